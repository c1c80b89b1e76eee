"""The rule for relative names: the file path inside an area, such as "video/clip.mp4" or "checkpoints/a.pth".

A relative name is appended to an area's key prefix and to its mirror directory, so it must not climb out of
either: POSIX '/' separators only, no leading '/', no empty, '.' or '..' segment, no backslash, no control
character (DEL and C1 included), at most 512 characters in all and 255 UTF-8 bytes per segment (the usual
file-name limit). Names are checked, never corrected.
"""

from __future__ import annotations

import unicodedata

from storage_layout.errors import InvalidRelativeName, quote_value

MAX_RELATIVE_NAME_LENGTH = 512
MAX_SEGMENT_BYTES = 255
RELATIVE_NAME_RULE = (
    "use a relative POSIX path such as 'video/clip.mp4': '/'-separated segments, none empty, '.' or '..', "
    "without backslashes or control characters"
)


def validate_relative_name(relative: str) -> str:
    """Return `relative` unchanged if it is a safe relative name; else raise InvalidRelativeName.

    Raises TypeError when `relative` is not a str (a bug in the caller, not bad input).
    """
    if not isinstance(relative, str):
        raise TypeError(f"relative name must be a str, not {type(relative).__name__}: {relative!r}")
    problem = relative_name_problem(relative)
    if problem is not None:
        raise InvalidRelativeName(f"relative name {quote_value(relative)} is invalid: {problem}; {RELATIVE_NAME_RULE}")
    return relative


def relative_name_problem(relative: str) -> str | None:
    """Say what is wrong with `relative` ("it has a '..' segment"), or return None when it is valid."""
    if not relative:
        return "it is empty"
    if len(relative) > MAX_RELATIVE_NAME_LENGTH:
        return f"it is {len(relative)} characters long, more than {MAX_RELATIVE_NAME_LENGTH}"
    if relative.startswith("/"):
        return "it is absolute (starts with '/')"
    for character in relative:
        if character == "\\":
            return "it contains a backslash"
        category = unicodedata.category(character)
        if category == "Cc":
            return f"it contains the control character {character!r}"
        if category == "Cs":
            # NOTE: a lone surrogate (from a file name undecodable as UTF-8) cannot be stored as a key.
            return f"it contains the unpaired surrogate {character!r}"
    for segment in relative.split("/"):
        if segment == "":
            return "it has an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
        size_bytes = len(segment.encode("utf-8"))
        if size_bytes > MAX_SEGMENT_BYTES:
            shown = quote_value(segment)
            return f"segment {shown} is {size_bytes} UTF-8 bytes, more than {MAX_SEGMENT_BYTES}"
    return None
