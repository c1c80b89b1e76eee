"""The relative-name rule: the file path inside an area must stay inside it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage_layout import InvalidRelativeName, LayoutError, validate_relative_name


@pytest.mark.parametrize(
    "relative",
    [
        "clip.mp4",
        "video/clip.mp4",
        "checkpoints/vocaset.pth",
        "a/b/c/d.txt",
        "my clip (1).mp4",
        ".hidden",  # a hidden file is a legitimate name inside an area
        "...",
        "a..b",
        "vidéo/clip.mp4",
        "x" * 255,
        "/".join(["x" * 100] * 5) + "/abcdefg",  # 512 characters in all
    ],
)
def test_valid_relative_names_are_returned_unchanged(relative: str) -> None:
    assert validate_relative_name(relative) == relative


@pytest.mark.parametrize(
    ("relative", "problem"),
    [
        ("", "it is empty"),
        ("/etc/passwd", "it is absolute (starts with '/')"),
        ("/", "it is absolute (starts with '/')"),
        ("..", "it has a '..' segment"),
        ("../x", "it has a '..' segment"),
        ("a/../b", "it has a '..' segment"),
        ("a/..", "it has a '..' segment"),
        (".", "it has a '.' segment"),
        ("a/./b", "it has a '.' segment"),
        ("a//b", "it has an empty segment ('//' or a trailing '/')"),
        ("a/", "it has an empty segment ('//' or a trailing '/')"),
        ("a\\b", "it contains a backslash"),
        ("..\\x", "it contains a backslash"),
        ("a\x00b", "it contains the control character '\\x00'"),
        ("a\nb", "it contains the control character '\\n'"),
        ("a\tb", "it contains the control character '\\t'"),
        ("a\x7fb", "it contains the control character '\\x7f'"),
        ("a\x85b", "it contains the control character '\\x85'"),
        ("a\udcffb", "it contains the unpaired surrogate '\\udcff'"),
        ("x" * 256, "is 256 UTF-8 bytes, more than 255"),
        ("é" * 128, "is 256 UTF-8 bytes, more than 255"),
        ("/".join(["x" * 100] * 5) + "/abcdefgh", "it is 513 characters long, more than 512"),
    ],
)
def test_invalid_relative_names_are_rejected_with_the_reason(relative: str, problem: str) -> None:
    with pytest.raises(InvalidRelativeName) as caught:
        validate_relative_name(relative)
    message = str(caught.value)
    assert message.startswith("relative name ")
    assert problem in message
    assert "use a relative POSIX path such as 'video/clip.mp4'" in message


def test_the_message_names_the_value() -> None:
    with pytest.raises(InvalidRelativeName) as caught:
        validate_relative_name("a/../b")
    assert str(caught.value).startswith("relative name 'a/../b' is invalid: it has a '..' segment; ")


def test_a_very_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(InvalidRelativeName) as caught:
        validate_relative_name("x" * 5000)
    assert "... (5000 characters)" in str(caught.value)
    assert len(str(caught.value)) < 500


def test_invalid_relative_name_is_a_value_error() -> None:
    assert issubclass(InvalidRelativeName, ValueError)
    assert issubclass(InvalidRelativeName, LayoutError)


def test_a_relative_name_that_is_not_a_str_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="relative name must be a str"):
        validate_relative_name(b"a.txt")  # type: ignore[arg-type]


@settings(database=None, deadline=None)
@given(st.text(max_size=40))
def test_an_accepted_name_cannot_climb_out_or_hide_a_separator(relative: str) -> None:
    try:
        validate_relative_name(relative)
    except InvalidRelativeName:
        return
    segments = relative.split("/")
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert "\\" not in relative
    assert all(ord(character) >= 0x20 and not 0x7F <= ord(character) <= 0x9F for character in relative)
