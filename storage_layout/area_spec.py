"""The declaration of one area: its object-key template and its local-mirror template, checked when built.

A template is '/'-separated segments, each a literal name ("processed", "warping-data") or one whole
placeholder ("{twin_id}"). The rules below are what let a `Layout` parse keys back without guessing:
- the first segment is a literal, so every key names its area up front;
- both templates hold the same placeholders, each once and in the same order, so a prefix for the leading
  fields means the same subtree in the store and in the mirror;
- a {twin_id} placeholder comes first, so a twin's files in an area lie under one prefix (deleting a twin
  is one prefix per area).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from storage_layout.errors import InvalidSpec
from storage_layout.fields import FIELD_NAME
from storage_layout.location import Area
from storage_layout.twin_id import id_problem

_PLACEHOLDER = re.compile(rf"\{{({FIELD_NAME.pattern})\}}")


@dataclass(frozen=True)
class Segment:
    """One template segment: a literal name, or (`is_field`) the name of the placeholder filling it."""

    text: str
    is_field: bool


@dataclass(frozen=True)
class AreaSpec:
    """One area: `key_template` ("raw/{twin_id}") and `mirror_template` ("warping-data/{twin_id}").

    `field_names` is derived: the placeholders in template order. Raises InvalidSpec when a template breaks
    the rules in this module's docstring.
    """

    area: Area
    key_template: str
    mirror_template: str
    field_names: tuple[str, ...] = field(init=False)
    key_segments: tuple[Segment, ...] = field(init=False, repr=False, compare=False)
    mirror_segments: tuple[Segment, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.area, Area):
            raise TypeError(f"area must be an Area, not {type(self.area).__name__}: {self.area!r}")
        key_segments = split_template(self.key_template)
        mirror_segments = split_template(self.mirror_template)
        field_names = _field_names(key_segments)
        if _field_names(mirror_segments) != field_names:
            raise InvalidSpec(
                f"{self.area.value} area: templates {self.key_template!r} and {self.mirror_template!r} must "
                "hold the same placeholders in the same order"
            )
        if "twin_id" in field_names and field_names[0] != "twin_id":
            raise InvalidSpec(
                f"{self.area.value} area: {{twin_id}} must be the first placeholder of "
                f"{self.key_template!r}, so that a twin's files lie under one prefix"
            )
        object.__setattr__(self, "field_names", field_names)
        object.__setattr__(self, "key_segments", key_segments)
        object.__setattr__(self, "mirror_segments", mirror_segments)


def split_template(template: str) -> tuple[Segment, ...]:
    """Split a template into segments; raise InvalidSpec naming the template when it breaks a rule."""
    if not isinstance(template, str) or not template:
        raise InvalidSpec(f"template {template!r} is invalid: use '/'-separated names like 'raw/{{twin_id}}'")
    segments: list[Segment] = []
    for text in template.split("/"):
        placeholder = _PLACEHOLDER.fullmatch(text)
        if placeholder is not None:
            segments.append(Segment(placeholder.group(1), is_field=True))
            continue
        if "{" in text or "}" in text:
            problem: str | None = "a placeholder must be a whole segment like '{model}'"
        else:
            problem = id_problem(text)
        if problem is not None:
            raise InvalidSpec(f"template {template!r} has an invalid segment {text!r}: {problem}")
        segments.append(Segment(text, is_field=False))
    if segments[0].is_field:
        raise InvalidSpec(f"template {template!r} must start with a literal name, not a placeholder")
    names = _field_names(tuple(segments))
    if len(set(names)) != len(names):
        raise InvalidSpec(f"template {template!r} holds a placeholder more than once")
    return tuple(segments)


def _field_names(segments: tuple[Segment, ...]) -> tuple[str, ...]:
    return tuple(segment.text for segment in segments if segment.is_field)
