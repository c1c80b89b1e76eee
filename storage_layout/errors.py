"""The exception tree of `storage_layout`: every error is a ValueError, branched by which input was wrong.

    ValueError
    └── LayoutError              base of every error this package raises on purpose
        ├── InvalidField         a placeholder value (model, run, job, attempt, ...) breaks its naming rule
        │   └── InvalidTwinId    a twin_id breaks the twin_id rule
        ├── InvalidRelativeName  a file name inside an area is unsafe (absolute, '..', control characters)
        ├── InvalidKey           an object key matches no area, has too few parts, or carries invalid parts
        ├── InvalidMirrorPath    a local path lies outside the mirror root or in no area
        ├── FieldMismatch        the fields given do not fit the area (missing, unknown, or out of order)
        └── InvalidSpec          an AreaSpec or Layout is malformed or ambiguous (a bug, not bad input)

They are ValueErrors because each one means "this value is unusable; change it". Messages name the value
(repr), say what is wrong and how to fix it. twinplatform translates them into its own InputError at its seam.
"""

from __future__ import annotations


class LayoutError(ValueError):
    """Base of every error `storage_layout` raises on purpose."""


class InvalidField(LayoutError):
    """A placeholder value breaks its naming rule; `field` and `value` say which one."""

    def __init__(self, message: str, *, field: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class InvalidTwinId(InvalidField):
    """A twin_id breaks the twin_id rule (see `storage_layout.twin_id`)."""


class InvalidRelativeName(LayoutError):
    """A relative file name inside an area is unsafe or malformed."""


class InvalidKey(LayoutError):
    """An object key matches no area, lacks a relative name, or carries an invalid part."""


class InvalidMirrorPath(LayoutError):
    """A local path lies outside the mirror root or does not map to any area."""


class FieldMismatch(LayoutError):
    """The fields given for an area are missing, unknown to it, or skip a leading field."""


class InvalidSpec(LayoutError):
    """An AreaSpec or a Layout is malformed or ambiguous: a programming error in the spec."""


#: longest part of a string quoted in a message; a runaway value should not flood a log line
_MAX_QUOTED_CHARACTERS = 160


def quote_value(value: object) -> str:
    """`repr(value)` for naming the offending value in a message; a very long string is cut short."""
    if isinstance(value, str) and len(value) > _MAX_QUOTED_CHARACTERS:
        return f"{value[:_MAX_QUOTED_CHARACTERS]!r}... ({len(value)} characters)"
    return repr(value)
