"""Where a file lives, independent of storage: its area, the area's field values, and its relative name.

A `Location` holds validated values only, so whatever a `Layout` builds from one is safe to use as an object
key or a local path. It does not know the templates: a `Layout` checks that its fields are its area's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage_layout.errors import FieldMismatch
from storage_layout.fields import FIELD_NAME, validate_attempt, validate_field
from storage_layout.relative_name import validate_relative_name


class Area(str, enum.Enum):
    """The top-level parts of the tree; each has one AreaSpec in a Layout."""

    RAW = "raw"  # media uploaded for a twin
    PROCESSED = "processed"  # a model's preprocessing outputs for a twin
    INFERENCE = "inference"  # a model's outputs for one inference run of a twin
    COMMON = "common"  # a model's shared files: checkpoints, configs, static assets
    SCRATCH = "scratch"  # one job attempt's uploads, before they are promoted to their final keys
    DATASETS = "datasets"  # a model's training datasets assembled from many twins' preprocess outputs


@dataclass(frozen=True)
class Location:
    """A file in one area: `fields` holds (placeholder, value) pairs sorted by name; `relative` is its path.

    Build one with the per-area constructors (`Location.raw(...)`) or `Location.of(area, relative, **fields)`.
    Every value is validated here (InvalidField, InvalidTwinId, InvalidRelativeName, FieldMismatch); nothing
    is corrected, but the pairs are stored sorted so that equal locations compare and hash equal.
    """

    area: Area
    fields: tuple[tuple[str, str], ...]
    relative: str

    def __post_init__(self) -> None:
        if not isinstance(self.area, Area):
            raise TypeError(f"area must be an Area, not {type(self.area).__name__}: {self.area!r}")
        if not isinstance(self.fields, tuple):
            kind = type(self.fields).__name__
            raise TypeError(f"fields must be a tuple of (name, value) pairs, not {kind}")
        names = [name for name, _ in self.fields]
        if len(set(names)) != len(names):
            raise FieldMismatch(f"Location fields {names!r} name a field more than once; give each once")
        for name in names:
            if not isinstance(name, str) or FIELD_NAME.fullmatch(name) is None:
                raise FieldMismatch(f"field name {name!r} is invalid; use a placeholder name like 'model'")
        checked = tuple(sorted((name, validate_field(name, value)) for name, value in self.fields))
        object.__setattr__(self, "fields", checked)
        validate_relative_name(self.relative)

    @classmethod
    def of(cls, area: Area, relative: str, **fields: str) -> Location:
        """A location in any area, fields by name: `Location.of(Area.COMMON, "a.pth", model="th")`."""
        return cls(area, tuple(fields.items()), relative)

    @classmethod
    def raw(cls, twin_id: str, relative: str) -> Location:
        """Media uploaded for a twin, e.g. `Location.raw("alice", "video/clip.mp4")`."""
        return cls.of(Area.RAW, relative, twin_id=twin_id)

    @classmethod
    def processed(cls, twin_id: str, model: str, relative: str) -> Location:
        """A model's preprocessing output for a twin: `Location.processed("alice", "th", "video/v.mp4")`."""
        return cls.of(Area.PROCESSED, relative, twin_id=twin_id, model=model)

    @classmethod
    def inference(cls, twin_id: str, model: str, run: str, relative: str) -> Location:
        """An output of one inference run of a model for a twin."""
        return cls.of(Area.INFERENCE, relative, twin_id=twin_id, model=model, run=run)

    @classmethod
    def common(cls, model: str, relative: str) -> Location:
        """A file shared by every twin of a model, e.g. `Location.common("th", "checkpoints/vocaset.pth")`."""
        return cls.of(Area.COMMON, relative, model=model)

    @classmethod
    def dataset(cls, model: str, name: str, relative: str) -> Location:
        """A file of the training dataset `name` of a model: `Location.dataset("facesync", "v1", "train/a.npz")`."""
        return cls.of(Area.DATASETS, relative, model=model, name=name)

    @classmethod
    def scratch(cls, job: str, attempt: int | str, relative: str) -> Location:
        """An upload of one job attempt, kept apart until the attempt's outputs are promoted."""
        return cls.of(Area.SCRATCH, relative, job=job, attempt=validate_attempt(attempt))

    def field_value(self, name: str) -> str:
        """The value of placeholder `name`; KeyError naming the fields present when this location has none."""
        for field_name, value in self.fields:
            if field_name == name:
                return value
        raise KeyError(f"{self.area.value} location has no field {name!r}; it has {self.field_names!r}")

    @property
    def field_names(self) -> tuple[str, ...]:
        """The placeholder names this location carries, sorted."""
        return tuple(name for name, _ in self.fields)

    @property
    def twin_id(self) -> str | None:
        """The twin this file belongs to, or None in an area without twins (common, scratch, datasets)."""
        return dict(self.fields).get("twin_id")
