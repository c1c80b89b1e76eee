"""Property tests: valid locations round-trip through keys and mirror paths; any key parses or is refused."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage_layout import DEFAULT_LAYOUT, Area, InvalidKey, InvalidMirrorPath, Location

# NOTE: no example database, so running the suite writes nothing into the repository.
PROPERTY_SETTINGS = settings(database=None, deadline=None, max_examples=300)
ROOT = Path("/mirror/root")

twin_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True).filter(lambda v: ".." not in v)
run_ids = twin_ids
job_ids = twin_ids
models = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
attempts = st.integers(min_value=1, max_value=10**18 - 1)
segments = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/\\"), min_size=1, max_size=30
).filter(lambda segment: segment not in (".", ".."))
relative_names = st.lists(segments, min_size=1, max_size=6).map("/".join)

locations = st.one_of(
    st.builds(Location.raw, twin_ids, relative_names),
    st.builds(Location.processed, twin_ids, models, relative_names),
    st.builds(Location.inference, twin_ids, models, run_ids, relative_names),
    st.builds(Location.common, models, relative_names),
    st.builds(Location.scratch, job_ids, attempts, relative_names),
)


@PROPERTY_SETTINGS
@given(locations)
def test_key_then_parse_key_gives_back_the_location(location: Location) -> None:
    key = DEFAULT_LAYOUT.key(location)
    assert DEFAULT_LAYOUT.parse_key(key) == location
    assert DEFAULT_LAYOUT.key(DEFAULT_LAYOUT.parse_key(key)) == key


@PROPERTY_SETTINGS
@given(locations)
def test_mirror_path_then_key_gives_back_the_key(location: Location) -> None:
    key = DEFAULT_LAYOUT.key(location)
    path = DEFAULT_LAYOUT.mirror_path_for_key(key, ROOT)
    assert path == DEFAULT_LAYOUT.mirror_path(location, ROOT)
    assert DEFAULT_LAYOUT.key_for_mirror_path(path, ROOT) == key
    assert DEFAULT_LAYOUT.parse_mirror_path(path, ROOT) == location


@PROPERTY_SETTINGS
@given(locations)
def test_every_key_lies_under_its_full_prefix_and_its_twin_prefix(location: Location) -> None:
    key = DEFAULT_LAYOUT.key(location)
    assert key == DEFAULT_LAYOUT.prefix(location.area, **dict(location.fields)) + location.relative
    if location.twin_id is not None:
        assert any(key.startswith(prefix) for prefix in DEFAULT_LAYOUT.twin_prefixes(location.twin_id))
    path = DEFAULT_LAYOUT.mirror_path(location, ROOT)
    assert DEFAULT_LAYOUT.mirror_dir(location.area, ROOT, **dict(location.fields)) in path.parents


@PROPERTY_SETTINGS
@given(twin_ids, twin_ids, relative_names)
def test_one_twins_prefixes_never_cover_another_twins_keys(owner: str, other: str, relative: str) -> None:
    if owner == other:
        return
    key = DEFAULT_LAYOUT.key(Location.raw(other, relative))
    assert not any(key.startswith(prefix) for prefix in DEFAULT_LAYOUT.twin_prefixes(owner))


key_parts = st.sampled_from(
    [area.value for area in Area]
    + ["preprocessed", "th", "alice", "run-1", "1", "07", "x.mp4", "", ".", "..", "a\\b", "A B", "\x00", "é"]
)


@PROPERTY_SETTINGS
@given(st.one_of(st.lists(key_parts, max_size=8).map("/".join), st.text(max_size=60)))
def test_any_key_either_parses_exactly_or_raises_invalid_key(key: str) -> None:
    try:
        location = DEFAULT_LAYOUT.parse_key(key)
    except InvalidKey as error:
        assert repr(key) in str(error) or "characters)" in str(error)
    else:
        assert DEFAULT_LAYOUT.key(location) == key


mirror_parts = st.sampled_from(
    ["warping-data", "warping-processed", "warping-serving", "warping-common", "warping-scratch"]
    + ["processed", "th", "alice", "run-1", "1", "07", "x.mp4", "..", "a\\b", "A B", "\x7f", "é"]
)


@PROPERTY_SETTINGS
@given(st.lists(mirror_parts, max_size=8))
def test_any_mirror_path_either_parses_exactly_or_raises(parts: list[str]) -> None:
    path = ROOT.joinpath(*parts)
    try:
        location = DEFAULT_LAYOUT.parse_mirror_path(path, ROOT)
    except InvalidMirrorPath:
        return
    assert DEFAULT_LAYOUT.mirror_path(location, ROOT) == path
