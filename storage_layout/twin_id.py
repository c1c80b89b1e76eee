"""The id rule: which strings may be a twin_id, run id or job id, the values that become one path segment.

An id lands verbatim in object keys and in local paths, so the rule admits only what is safe and means the
same in both: 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit, no '..' anywhere.
That excludes '/', '\\', whitespace, control characters, hidden names ('.x') and option-like names ('-x').
Ids are checked, never corrected: a bad id is rejected with a message that says how to fix it.
"""

from __future__ import annotations

import string

from storage_layout.errors import InvalidField, InvalidTwinId, quote_value

MAX_ID_LENGTH = 64
ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._-")
ID_RULE = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def id_problem(value: str) -> str | None:
    """Say what is wrong with `value` as an id ("it contains '/'"), or return None when it is valid."""
    if not value:
        return "it is empty"
    for character in value:
        if character not in ID_CHARACTERS:
            return f"it contains {character!r}"
    if value[0] in "._-":
        return f"it starts with {value[0]!r}"
    if ".." in value:
        return "it contains '..'"
    if len(value) > MAX_ID_LENGTH:
        return f"it is {len(value)} characters long, more than {MAX_ID_LENGTH}"
    return None


def validate_id(value: str, field: str) -> str:
    """Return `value` unchanged if it obeys the id rule; else raise InvalidField naming `field`.

    This is also the rule for any placeholder a new area introduces (see `storage_layout.fields`).
    Raises TypeError when `value` is not a str (a bug in the caller, not bad input).
    """
    return _checked(value, field, InvalidField)


def validate_twin_id(value: str) -> str:
    """Return `value` unchanged if it is a valid twin_id; else raise InvalidTwinId saying what to change."""
    return _checked(value, "twin_id", InvalidTwinId)


def validate_run_id(value: str) -> str:
    """Return `value` unchanged if it is a valid inference run id (the id rule); else raise InvalidField."""
    return _checked(value, "run", InvalidField)


def validate_job_id(value: str) -> str:
    """Return `value` unchanged if it is a valid job id (the id rule); else raise InvalidField."""
    return _checked(value, "job", InvalidField)


def _checked(value: str, field: str, error_type: type[InvalidField]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}: {quote_value(value)}")
    problem = id_problem(value)
    if problem is not None:
        raise error_type(f"{field} {quote_value(value)} is invalid: {problem}; {ID_RULE}", field=field, value=value)
    return value
