"""The rule for each placeholder a template may hold ({twin_id}, {model}, {run}, {job}, {attempt}, ...).

`FIELD_RULES` maps a placeholder name to its validator. A placeholder it does not list (say {name} in a new
`datasets/{model}/{name}` area) follows the id rule of `storage_layout.twin_id`, so adding an area needs no
code here. Every validator returns the value unchanged (attempt: as canonical decimal text) or raises
InvalidField.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

from storage_layout.errors import InvalidField, quote_value
from storage_layout.twin_id import validate_id, validate_job_id, validate_run_id, validate_twin_id

#: what a placeholder may be called: "{twin_id}", "{model}", "{name}"
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]*")

MAX_MODEL_NAME_LENGTH = 32
MODEL_NAME_RULE = "use 1-32 lowercase letters, digits or '_', starting with a lowercase letter"
_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MODEL_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

#: 18 digits: every attempt fits a signed 64-bit database column
MAX_ATTEMPT_DIGITS = 18
ATTEMPT_RULE = f"use a positive decimal integer of at most {MAX_ATTEMPT_DIGITS} digits, without leading zeros"
_ATTEMPT = re.compile(rf"[1-9][0-9]{{0,{MAX_ATTEMPT_DIGITS - 1}}}")


def validate_model_name(value: str) -> str:
    """Return `value` unchanged if it is a model name like "th" or "facesync"; else raise InvalidField."""
    if not isinstance(value, str):
        raise TypeError(f"model must be a str, not {type(value).__name__}: {quote_value(value)}")
    if _MODEL_NAME.fullmatch(value) is None:
        raise InvalidField(
            f"model {quote_value(value)} is invalid: {_model_name_problem(value)}; {MODEL_NAME_RULE}",
            field="model",
            value=value,
        )
    return value


def validate_attempt(value: int | str) -> str:
    """Return an attempt number (1, 2, ...) as the decimal text used in keys; else raise InvalidField.

    Text must already be canonical ("7", not "07" or "+7"), so that parsing a key and building it again gives
    the same key. Raises TypeError for anything but int or str (bool included).
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"attempt must be an int or str, not {type(value).__name__}: {quote_value(value)}")
    text = str(value)
    if _ATTEMPT.fullmatch(text) is None:
        raise InvalidField(
            f"attempt {quote_value(value)} is invalid: {_attempt_problem(text)}; {ATTEMPT_RULE}",
            field="attempt",
            value=value,
        )
    return text


#: placeholder name -> validator; any other placeholder follows the id rule (see `validate_field`)
FIELD_RULES: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {
        "twin_id": validate_twin_id,
        "model": validate_model_name,
        "run": validate_run_id,
        "job": validate_job_id,
        "attempt": validate_attempt,
    }
)


def validate_field(name: str, value: str) -> str:
    """Check `value` for the placeholder `name` by its rule in FIELD_RULES, or by the id rule if unlisted."""
    rule = FIELD_RULES.get(name)
    if rule is None:
        return validate_id(value, name)
    return rule(value)


def _model_name_problem(value: str) -> str:
    if not value:
        return "it is empty"
    for character in value:
        if character not in _MODEL_NAME_CHARACTERS:
            return f"it contains {character!r}"
    if not value[0].isalpha():
        return f"it starts with {value[0]!r}"
    return f"it is {len(value)} characters long, more than {MAX_MODEL_NAME_LENGTH}"


def _attempt_problem(text: str) -> str:
    if not text:
        return "it is empty"
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit():
        return "it is not a decimal integer"
    if text.startswith("-") or set(text) == {"0"}:
        return "it is not positive"
    if text.startswith("0"):
        return "it has a leading zero"
    return f"it has {len(text)} digits, more than {MAX_ATTEMPT_DIGITS}"
