"""The id rules: twin_id (and run/job ids, which share it), model names and attempt numbers."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage_layout import (
    InvalidField,
    InvalidTwinId,
    LayoutError,
    validate_attempt,
    validate_field,
    validate_job_id,
    validate_model_name,
    validate_run_id,
    validate_twin_id,
)

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@pytest.mark.parametrize("value", ["alice", "th_test", "A", "7", "a.b-c_d", "x" * 64, "v1.2.3"])
def test_valid_twin_ids_are_returned_unchanged(value: str) -> None:
    assert validate_twin_id(value) == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("../x", "it contains '/'"),
        ("a/b", "it contains '/'"),
        ("a\\b", "it contains '\\\\'"),
        (".hidden", "it starts with '.'"),
        ("-x", "it starts with '-'"),
        ("_x", "it starts with '_'"),
        ("", "it is empty"),
        ("a" * 65, "it is 65 characters long, more than 64"),
        ("a\x00b", "it contains '\\x00'"),
        ("a\nb", "it contains '\\n'"),
        ("a\x7fb", "it contains '\\x7f'"),
        ("a b", "it contains ' '"),
        ("a..b", "it contains '..'"),
        ("..", "it starts with '.'"),
        ("alicé", "it contains 'é'"),
    ],
)
def test_invalid_twin_ids_are_rejected_with_the_reason(value: str, problem: str) -> None:
    with pytest.raises(InvalidTwinId) as caught:
        validate_twin_id(value)
    message = str(caught.value)
    assert message.startswith(f"twin_id {value!r} is invalid: {problem}; ")
    assert message.endswith("use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    assert caught.value.field == "twin_id"
    assert caught.value.value == value


def test_the_message_matches_the_documented_example() -> None:
    with pytest.raises(InvalidTwinId) as caught:
        validate_twin_id("../x")
    assert str(caught.value) == (
        "twin_id '../x' is invalid: it contains '/'; "
        "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )


def test_invalid_twin_id_is_a_value_error_and_a_layout_error() -> None:
    assert issubclass(InvalidTwinId, ValueError)
    assert issubclass(InvalidTwinId, LayoutError)
    assert issubclass(InvalidTwinId, InvalidField)


def test_a_twin_id_that_is_not_a_str_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="twin_id must be a str, not int"):
        validate_twin_id(7)  # type: ignore[arg-type]


@settings(database=None, deadline=None)
@given(st.text(max_size=80))
def test_the_twin_id_rule_matches_its_definition(value: str) -> None:
    expected_valid = ID_PATTERN.fullmatch(value) is not None and ".." not in value
    try:
        assert validate_twin_id(value) == value
    except InvalidTwinId:
        assert not expected_valid
    else:
        assert expected_valid


@pytest.mark.parametrize("validate", [validate_run_id, validate_job_id])
def test_run_and_job_ids_share_the_twin_id_rule(validate: Callable[[str], str]) -> None:
    assert validate("run-2024.01_a") == "run-2024.01_a"
    with pytest.raises(InvalidField, match="is invalid: it contains '/'"):
        validate("a/b")
    with pytest.raises(InvalidField, match="it contains '..'"):
        validate("a..b")


def test_run_id_errors_name_the_run_field_and_are_not_twin_id_errors() -> None:
    with pytest.raises(InvalidField) as caught:
        validate_run_id(".x")
    assert not isinstance(caught.value, InvalidTwinId)
    assert str(caught.value).startswith("run '.x' is invalid: it starts with '.'")


@pytest.mark.parametrize("value", ["th", "facesync", "bilayer", "lawdnet", "perceptalign", "m2", "a_b", "a" * 32])
def test_valid_model_names(value: str) -> None:
    assert validate_model_name(value) == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "it is empty"),
        ("TH", "it contains 'T'"),
        ("1th", "it starts with '1'"),
        ("_th", "it starts with '_'"),
        ("t-h", "it contains '-'"),
        ("t.h", "it contains '.'"),
        ("th/x", "it contains '/'"),
        ("a" * 33, "it is 33 characters long, more than 32"),
    ],
)
def test_invalid_model_names(value: str, problem: str) -> None:
    with pytest.raises(InvalidField) as caught:
        validate_model_name(value)
    assert str(caught.value) == (
        f"model {value!r} is invalid: {problem}; "
        "use 1-32 lowercase letters, digits or '_', starting with a lowercase letter"
    )


@pytest.mark.parametrize(("value", "expected"), [(1, "1"), ("1", "1"), (42, "42"), ("10", "10")])
def test_valid_attempts_become_decimal_text(value: int | str, expected: str) -> None:
    assert validate_attempt(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, "it is not positive"),
        (-1, "it is not positive"),
        ("0", "it is not positive"),
        ("07", "it has a leading zero"),
        ("+1", "it is not a decimal integer"),
        ("1_000", "it is not a decimal integer"),
        (" 1", "it is not a decimal integer"),
        ("\u0661", "it is not a decimal integer"),  # ARABIC-INDIC DIGIT ONE: str.isdigit() accepts it
        ("", "it is empty"),
        ("1" * 19, "it has 19 digits, more than 18"),
    ],
)
def test_invalid_attempts(value: int | str, problem: str) -> None:
    with pytest.raises(InvalidField, match=re.escape(f"attempt {value!r} is invalid: {problem}; ")):
        validate_attempt(value)


@pytest.mark.parametrize("value", [True, 1.0, None])
def test_attempts_of_other_types_are_type_errors(value: object) -> None:
    with pytest.raises(TypeError, match="attempt must be an int or str"):
        validate_attempt(value)  # type: ignore[arg-type]


def test_validate_field_dispatches_by_placeholder_name() -> None:
    assert validate_field("model", "th") == "th"
    assert validate_field("attempt", "3") == "3"
    with pytest.raises(InvalidTwinId):
        validate_field("twin_id", "a/b")
    with pytest.raises(InvalidField, match="^model 'TH' is invalid"):
        validate_field("model", "TH")


def test_an_unlisted_placeholder_follows_the_id_rule() -> None:
    assert validate_field("name", "vox-celeb2") == "vox-celeb2"
    with pytest.raises(InvalidField, match="^name '../x' is invalid: it contains '/'"):
        validate_field("name", "../x")
