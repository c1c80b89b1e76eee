"""Local mirror paths of the default layout: exact paths per area, paths back to keys, paths outside root."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_layout import DEFAULT_LAYOUT, Area, InvalidKey, InvalidMirrorPath, InvalidTwinId, Location

ROOT = Path("/srv/warping_shared")

EXAMPLES = [
    ("raw/alice/video/clip.mp4", "warping-data/alice/video/clip.mp4"),
    (
        "processed/alice/preprocessed/th/video/video.mp4",
        "warping-processed/alice/processed/th/video/video.mp4",
    ),
    ("inference/alice/th/run-7/result.mp4", "warping-serving/alice/th/run-7/result.mp4"),
    ("common/th/checkpoints/vocaset.pth", "warping-common/th/checkpoints/vocaset.pth"),
    ("scratch/job-42/3/video/video.mp4", "warping-scratch/job-42/3/video/video.mp4"),
]


@pytest.mark.parametrize(("key", "mirror_relative"), EXAMPLES)
def test_each_area_mirrors_to_the_documented_path(key: str, mirror_relative: str) -> None:
    location = DEFAULT_LAYOUT.parse_key(key)
    assert DEFAULT_LAYOUT.mirror_path(location, ROOT) == ROOT / mirror_relative
    assert DEFAULT_LAYOUT.mirror_path_for_key(key, ROOT) == ROOT / mirror_relative


@pytest.mark.parametrize(("key", "mirror_relative"), EXAMPLES)
def test_key_for_mirror_path_is_the_inverse(key: str, mirror_relative: str) -> None:
    assert DEFAULT_LAYOUT.key_for_mirror_path(ROOT / mirror_relative, ROOT) == key
    assert DEFAULT_LAYOUT.parse_mirror_path(ROOT / mirror_relative, ROOT) == DEFAULT_LAYOUT.parse_key(key)


def test_a_relative_root_works_the_same() -> None:
    root = Path("cache")
    assert DEFAULT_LAYOUT.mirror_path(Location.raw("a", "x.wav"), root) == Path("cache/warping-data/a/x.wav")
    assert DEFAULT_LAYOUT.key_for_mirror_path(Path("cache/warping-common/th/a.pth"), root) == "common/th/a.pth"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (Path("/srv/other/warping-data/alice/x"), "is outside the mirror root '/srv/warping_shared'"),
        (Path("/srv"), "is outside the mirror root"),
        (Path("warping-data/alice/x"), "is outside the mirror root"),
        (ROOT, "is in no area; its part under the mirror root must start with one of 'warping-data/'"),
        (ROOT / "raw/alice/x", "is in no area"),
        (ROOT / "warping-data/alice", "has too few parts for the raw area"),
        (ROOT / "warping-processed/alice/preprocessed/th/x", "does not fit the processed area"),
        (ROOT / "warping-data/../../etc/passwd", "twin_id '..' is invalid"),
        (ROOT / "warping-data/alice/../../../etc/passwd", "it has a '..' segment"),
        (ROOT / "warping-data/al ice/x", "twin_id 'al ice' is invalid"),
    ],
)
def test_bad_mirror_paths_are_rejected_naming_them(path: Path, message: str) -> None:
    with pytest.raises(InvalidMirrorPath) as caught:
        DEFAULT_LAYOUT.key_for_mirror_path(path, ROOT)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"path {str(path)!r} ")


def test_mirror_path_for_a_bad_key_raises_invalid_key() -> None:
    with pytest.raises(InvalidKey):
        DEFAULT_LAYOUT.mirror_path_for_key("raw/alice", ROOT)


@pytest.mark.parametrize(
    ("area", "fields", "directory"),
    [
        (Area.RAW, {}, "warping-data"),
        (Area.RAW, {"twin_id": "alice"}, "warping-data/alice"),
        (Area.PROCESSED, {"twin_id": "alice"}, "warping-processed/alice"),
        (Area.PROCESSED, {"twin_id": "alice", "model": "th"}, "warping-processed/alice/processed/th"),
        (Area.INFERENCE, {"twin_id": "alice", "model": "th", "run": "r"}, "warping-serving/alice/th/r"),
        (Area.COMMON, {"model": "th"}, "warping-common/th"),
        (Area.SCRATCH, {"job": "j", "attempt": "1"}, "warping-scratch/j/1"),
    ],
)
def test_mirror_dir_of_leading_fields(area: Area, fields: dict[str, str], directory: str) -> None:
    assert DEFAULT_LAYOUT.mirror_dir(area, ROOT, **fields) == ROOT / directory


def test_mirror_dir_rejects_a_field_without_the_ones_before_it() -> None:
    with pytest.raises(ValueError, match="needs 'twin_id'"):
        DEFAULT_LAYOUT.mirror_dir(Area.PROCESSED, ROOT, model="th")


def test_twin_mirror_dirs() -> None:
    assert DEFAULT_LAYOUT.twin_mirror_dirs("alice", ROOT) == [
        ROOT / "warping-data/alice",
        ROOT / "warping-processed/alice",
        ROOT / "warping-serving/alice",
    ]
    with pytest.raises(InvalidTwinId):
        DEFAULT_LAYOUT.twin_mirror_dirs("..", ROOT)


def test_nothing_touches_the_filesystem(tmp_path: Path) -> None:
    location = Location.processed("alice", "th", "video/video.mp4")
    path = DEFAULT_LAYOUT.mirror_path(location, tmp_path)
    assert DEFAULT_LAYOUT.key_for_mirror_path(path, tmp_path) == DEFAULT_LAYOUT.key(location)
    assert list(tmp_path.iterdir()) == []
