"""Names and paths of the twin storage tree: validated ids, object keys and local mirror paths, from one spec.

stdlib only: this package imports nothing of twinplatform or pipelines, and does no I/O.

    >>> from storage_layout import DEFAULT_LAYOUT, Location
    >>> DEFAULT_LAYOUT.key(Location.raw("alice", "video/clip.mp4"))
    'raw/alice/video/clip.mp4'
"""

from __future__ import annotations

from storage_layout.area_spec import AreaSpec
from storage_layout.errors import (
    FieldMismatch,
    InvalidField,
    InvalidKey,
    InvalidMirrorPath,
    InvalidRelativeName,
    InvalidSpec,
    InvalidTwinId,
    LayoutError,
)
from storage_layout.fields import FIELD_RULES, validate_attempt, validate_field, validate_model_name
from storage_layout.layout import DEFAULT_LAYOUT, MAX_KEY_BYTES, Layout
from storage_layout.location import Area, Location
from storage_layout.relative_name import validate_relative_name
from storage_layout.twin_id import validate_id, validate_job_id, validate_run_id, validate_twin_id

__all__ = [
    "DEFAULT_LAYOUT",
    "FIELD_RULES",
    "MAX_KEY_BYTES",
    "Area",
    "AreaSpec",
    "FieldMismatch",
    "InvalidField",
    "InvalidKey",
    "InvalidMirrorPath",
    "InvalidRelativeName",
    "InvalidSpec",
    "InvalidTwinId",
    "Layout",
    "LayoutError",
    "Location",
    "validate_attempt",
    "validate_field",
    "validate_id",
    "validate_job_id",
    "validate_model_name",
    "validate_relative_name",
    "validate_run_id",
    "validate_twin_id",
]
