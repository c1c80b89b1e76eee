"""The layout: turns Locations into object keys and local mirror paths, and parses both back, from one spec.

A `Layout` is built from AreaSpecs; nothing else in this module knows an area's shape, so adding an area (say
`datasets/{model}/{name}`) is one AreaSpec. Keys are "<area prefix>/<relative name>" with '/' separators
("raw/alice/video/clip.mp4"); mirror paths are the same tree under a local root with the mirror template's
names. Everything here is lexical: no filesystem access, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from storage_layout.area_spec import AreaSpec, Segment
from storage_layout.errors import (
    FieldMismatch,
    InvalidKey,
    InvalidMirrorPath,
    InvalidSpec,
    LayoutError,
    quote_value,
)
from storage_layout.fields import validate_field
from storage_layout.location import Area, Location
from storage_layout.twin_id import validate_twin_id

__all__ = ["DEFAULT_LAYOUT", "MAX_KEY_BYTES", "Area", "AreaSpec", "Layout", "Location"]

#: object stores (S3, GCS) refuse longer keys; failing here names the key instead of failing mid-upload
MAX_KEY_BYTES = 1024


class Layout:
    """The areas of the tree and the two views of each: object keys and local mirror paths.

    Raises InvalidSpec when two specs share an area or could claim the same key or mirror path (their
    templates must differ in a literal segment at some position).
    """

    def __init__(self, specs: Iterable[AreaSpec]) -> None:
        self._specs = tuple(specs)
        self._by_area: dict[Area, AreaSpec] = {}
        for spec in self._specs:
            if spec.area in self._by_area:
                raise InvalidSpec(f"area {spec.area.value!r} is declared twice; give each area one AreaSpec")
            self._by_area[spec.area] = spec
        for index, first in enumerate(self._specs):
            for second in self._specs[index + 1 :]:
                _require_distinct(first, second, mirror=False)
                _require_distinct(first, second, mirror=True)

    def __repr__(self) -> str:
        return f"Layout({list(self._specs)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self._specs == other._specs

    def __hash__(self) -> int:
        return hash(self._specs)

    @property
    def specs(self) -> tuple[AreaSpec, ...]:
        return self._specs

    def spec(self, area: Area) -> AreaSpec:
        """The spec of `area`; InvalidSpec when this layout does not declare it."""
        if not isinstance(area, Area):
            raise TypeError(f"area must be an Area, not {type(area).__name__}: {area!r}")
        try:
            return self._by_area[area]
        except KeyError:
            raise InvalidSpec(f"area {area!r} is not in this layout; add an AreaSpec for it") from None

    # -- locations to keys and paths ---------------------------------------------------------------

    def key(self, location: Location) -> str:
        """The object key of `location`, e.g. "raw/alice/video/clip.mp4".

        Raises FieldMismatch when the location's fields are not its area's, InvalidKey when the key would be
        longer than MAX_KEY_BYTES.
        """
        spec = self._spec_for(location)
        key = "/".join([*_fill(spec.key_segments, location), location.relative])
        size_bytes = len(key.encode("utf-8"))
        if size_bytes > MAX_KEY_BYTES:
            raise InvalidKey(
                f"key {quote_value(key)} is {size_bytes} UTF-8 bytes, more than the {MAX_KEY_BYTES} object "
                "stores accept; shorten the relative name"
            )
        return key

    def mirror_path(self, location: Location, root: Path) -> Path:
        """The local mirror path of `location` under `root`, e.g. root/"warping-data/alice/video/clip.mp4"."""
        spec = self._spec_for(location)
        return root.joinpath(*_fill(spec.mirror_segments, location), *location.relative.split("/"))

    # -- keys and paths back to locations ----------------------------------------------------------

    def parse_key(self, key: str) -> Location:
        """The Location whose key is exactly `key` (the inverse of `key`).

        Raises InvalidKey naming the key when it matches no area, has no relative name after the area's
        prefix, or carries an invalid field value or relative name. TypeError when `key` is not a str.
        """
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, not {type(key).__name__}: {quote_value(key)}")
        location = self._parse(key.split("/"), mirror=False, described=f"key {quote_value(key)}")
        self.key(location)  # NOTE: rebuilding the key checks it against MAX_KEY_BYTES
        return location

    def parse_mirror_path(self, path: Path, root: Path) -> Location:
        """The Location whose mirror path under `root` is `path` (lexically; symlinks are not resolved).

        Raises InvalidMirrorPath when `path` is not under `root`, matches no area, or carries invalid parts.
        """
        described = f"path {quote_value(str(path))}"
        try:
            inside = path.relative_to(root)
        except ValueError:
            raise InvalidMirrorPath(
                f"{described} is outside the mirror root {quote_value(str(root))}; pass a path under the root"
            ) from None
        return self._parse(list(inside.parts), mirror=True, described=described)

    def mirror_path_for_key(self, key: str, root: Path) -> Path:
        """The local mirror path of the object `key` under `root`; InvalidKey as in `parse_key`."""
        return self.mirror_path(self.parse_key(key), root)

    def key_for_mirror_path(self, path: Path, root: Path) -> str:
        """The object key of the mirrored file `path` under `root`.

        Raises InvalidMirrorPath as `parse_mirror_path` does, InvalidKey when the key would be too long.
        """
        return self.key(self.parse_mirror_path(path, root))

    # -- prefixes ----------------------------------------------------------------------------------

    def prefix(self, area: Area, **fields: str) -> str:
        """The key prefix, ending in "/", of the subtree that the given leading field values own.

        `prefix(Area.INFERENCE, twin_id="a")` is "inference/a/"; with no fields it is the area's leading
        literal ("inference/"); with every field it is the area's full prefix. It stops right after the last
        given field, so it covers everything those values own. FieldMismatch when a field is unknown to the
        area or is given without the fields before it; InvalidField when a value breaks its rule.
        """
        return "/".join(self._prefix_parts(area, fields, mirror=False)) + "/"

    def mirror_dir(self, area: Area, root: Path, **fields: str) -> Path:
        """The local directory under `root` matching `prefix(area, **fields)`; same errors as `prefix`."""
        return root.joinpath(*self._prefix_parts(area, fields, mirror=True))

    def twin_prefixes(self, twin_id: str) -> list[str]:
        """The twin's key prefix in each area with a {twin_id}: what deleting the twin removes."""
        validate_twin_id(twin_id)
        return [self.prefix(spec.area, twin_id=twin_id) for spec in self._twin_specs()]

    def twin_mirror_dirs(self, twin_id: str, root: Path) -> list[Path]:
        """The twin's local directory in each area with a {twin_id}, in the order of `twin_prefixes`."""
        validate_twin_id(twin_id)
        return [self.mirror_dir(spec.area, root, twin_id=twin_id) for spec in self._twin_specs()]

    # -- helpers -----------------------------------------------------------------------------------

    def _twin_specs(self) -> list[AreaSpec]:
        return [spec for spec in self._specs if "twin_id" in spec.field_names]

    def _spec_for(self, location: Location) -> AreaSpec:
        spec = self.spec(location.area)
        if location.field_names != tuple(sorted(spec.field_names)):
            raise FieldMismatch(
                f"a {location.area.value} location needs the fields {spec.field_names!r}, not {location.field_names!r}"
            )
        return spec

    def _parse(self, parts: Sequence[str], *, mirror: bool, described: str) -> Location:
        error_type: type[LayoutError] = InvalidMirrorPath if mirror else InvalidKey
        candidates = [spec for spec in self._specs if _literals_agree(_segments(spec, mirror), parts)]
        for spec in candidates:
            segments = _segments(spec, mirror)
            if len(parts) > len(segments):
                head, rest = parts[: len(segments)], parts[len(segments) :]
                values = tuple((seg.text, part) for seg, part in zip(segments, head, strict=True) if seg.is_field)
                try:
                    return Location(spec.area, values, "/".join(rest))
                except LayoutError as exc:
                    raise error_type(f"{described} is invalid: {exc}") from exc
        if candidates:
            raise error_type(
                f"{described} has too few parts for the {candidates[0].area.value} area: "
                f"expected '{_template(candidates[0], mirror)}/<relative name>'"
            )
        for spec in self._specs:
            if parts and _segments(spec, mirror)[0].text == parts[0]:
                raise error_type(
                    f"{described} does not fit the {spec.area.value} area: "
                    f"expected '{_template(spec, mirror)}/<relative name>'"
                )
        starts = ", ".join(repr(_segments(spec, mirror)[0].text + "/") for spec in self._specs)
        where = "its part under the mirror root" if mirror else "it"
        raise error_type(f"{described} is in no area; {where} must start with one of {starts}")

    def _prefix_parts(self, area: Area, fields: dict[str, str], *, mirror: bool) -> list[str]:
        spec = self.spec(area)
        names = spec.field_names
        unknown = sorted(set(fields) - set(names))
        if unknown:
            raise FieldMismatch(f"the {area.value} area has no field {unknown[0]!r}; its fields are {names}")
        leading = 0
        while leading < len(names) and names[leading] in fields:
            leading += 1
        if leading != len(fields):
            raise FieldMismatch(
                f"a {area.value} prefix needs {names[leading]!r} before the fields after it; "
                f"give leading fields of {names!r} in order"
            )
        segments = _segments(spec, mirror)
        if leading < len(names):
            # NOTE: cut right after the last given field, so the prefix covers all that its values own
            # ("processed/a/", not "processed/a/preprocessed/"); with no field, keep the leading literals.
            field_positions = [index for index, segment in enumerate(segments) if segment.is_field]
            segments = segments[: field_positions[leading - 1] + 1 if leading else field_positions[0]]
        return [validate_field(seg.text, fields[seg.text]) if seg.is_field else seg.text for seg in segments]


def _segments(spec: AreaSpec, mirror: bool) -> tuple[Segment, ...]:
    return spec.mirror_segments if mirror else spec.key_segments


def _template(spec: AreaSpec, mirror: bool) -> str:
    return spec.mirror_template if mirror else spec.key_template


def _fill(segments: tuple[Segment, ...], location: Location) -> list[str]:
    """The template's segments with the location's values in place of its placeholders."""
    return [location.field_value(seg.text) if seg.is_field else seg.text for seg in segments]


def _literals_agree(segments: tuple[Segment, ...], parts: Sequence[str]) -> bool:
    """Whether `parts` is non-empty and every literal segment equals the part at its position, if any."""
    pairs = zip(segments, parts, strict=False)
    return bool(parts) and all(seg.text == part for seg, part in pairs if not seg.is_field)


def _require_distinct(first: AreaSpec, second: AreaSpec, *, mirror: bool) -> None:
    """Raise InvalidSpec unless no key (or path) can match both templates: some position has two literals."""
    for one, other in zip(_segments(first, mirror), _segments(second, mirror), strict=False):
        if not one.is_field and not other.is_field and one.text != other.text:
            return
    raise InvalidSpec(
        f"templates {_template(first, mirror)!r} and {_template(second, mirror)!r} could both match one "
        f"{'path' if mirror else 'key'}; make them differ in a literal segment, such as the first"
    )


#: the seed layout: the tree the TH team's storage used, plus the attempt-scoped scratch area and the datasets
#: that dataset tasks assemble from many twins
DEFAULT_LAYOUT = Layout(
    (
        AreaSpec(Area.RAW, "raw/{twin_id}", "warping-data/{twin_id}"),
        AreaSpec(
            Area.PROCESSED,
            "processed/{twin_id}/preprocessed/{model}",
            "warping-processed/{twin_id}/processed/{model}",
        ),
        AreaSpec(
            Area.INFERENCE,
            "inference/{twin_id}/{model}/{run}",
            "warping-serving/{twin_id}/{model}/{run}",
        ),
        AreaSpec(Area.COMMON, "common/{model}", "warping-common/{model}"),
        AreaSpec(Area.SCRATCH, "scratch/{job}/{attempt}", "warping-scratch/{job}/{attempt}"),
        AreaSpec(Area.DATASETS, "datasets/{model}/{name}", "warping-datasets/{model}/{name}"),
    )
)
