"""The rules every backend applies to object keys and prefixes, so a key valid on one store is valid on all.

Keys are POSIX-style relative paths ("raw/alice/video/clip.mp4") that must also be safe file paths, because
the local backend and the worker mirror store each key as a file under a root folder:
no leading "/", no backslash, no empty, "." or ".." segment (no path traversal), no control characters,
no segment starting with ".twinplatform" (reserved for the platform's own bookkeeping files), at most
255 bytes per segment (common filesystem limit) and 1024 bytes in all (S3's limit).
"""

from __future__ import annotations

from twinplatform.errors import InputError

#: segments starting with this are the platform's own files (checksum store, temp files, mirror state)
RESERVED_SEGMENT_PREFIX = ".twinplatform"

_MAX_KEY_BYTES = 1024
_MAX_SEGMENT_BYTES = 255


def _segment_problem(segment: str) -> str | None:
    if segment in ("", ".", ".."):
        return "empty, '.' and '..' segments are not allowed"
    if segment.startswith(RESERVED_SEGMENT_PREFIX):
        return f"segments starting with {RESERVED_SEGMENT_PREFIX!r} are reserved for the platform"
    if len(segment.encode("utf-8")) > _MAX_SEGMENT_BYTES:
        return f"a segment is longer than {_MAX_SEGMENT_BYTES} bytes"
    return None


def _problem(text: str) -> str | None:
    if not isinstance(text, str):
        return f"keys are str, not {type(text).__name__}"
    if text.startswith("/"):
        return "keys are relative: no leading '/'"
    if "\\" in text:
        return "use '/' as the separator, not a backslash"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return "control characters are not allowed"
    if len(text.encode("utf-8")) > _MAX_KEY_BYTES:
        return f"longer than {_MAX_KEY_BYTES} bytes"
    for segment in text.split("/"):
        if problem := _segment_problem(segment):
            return problem
    return None


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a valid object key; raise InputError saying why not."""
    problem = "the key is empty" if key == "" else _problem(key)
    if problem:
        raise InputError(f"invalid storage key {key!r}: {problem}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` unchanged if it is a valid listing prefix ("" = everything, may end in "/")."""
    if prefix == "":
        return prefix
    problem = _problem(prefix[:-1] if isinstance(prefix, str) and prefix.endswith("/") else prefix)
    if problem:
        raise InputError(f"invalid storage prefix {prefix!r}: {problem}")
    return prefix
