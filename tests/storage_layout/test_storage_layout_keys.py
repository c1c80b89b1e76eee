"""Object keys of the default layout: exact strings per area, parsing back, rejections and prefixes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from storage_layout import (
    DEFAULT_LAYOUT,
    MAX_KEY_BYTES,
    Area,
    FieldMismatch,
    InvalidField,
    InvalidKey,
    InvalidRelativeName,
    InvalidTwinId,
    Location,
)

EXAMPLES = [
    (Location.raw("alice", "video/clip.mp4"), "raw/alice/video/clip.mp4"),
    (Location.raw("th_test", "audio/speech.wav"), "raw/th_test/audio/speech.wav"),
    (
        Location.processed("alice", "th", "video/video.mp4"),
        "processed/alice/preprocessed/th/video/video.mp4",
    ),
    (Location.inference("alice", "th", "run-7", "result.mp4"), "inference/alice/th/run-7/result.mp4"),
    (Location.common("th", "checkpoints/vocaset.pth"), "common/th/checkpoints/vocaset.pth"),
    (Location.common("th", "flame/generic_model.pkl"), "common/th/flame/generic_model.pkl"),
    (Location.scratch("job-42", 3, "video/video.mp4"), "scratch/job-42/3/video/video.mp4"),
]


@pytest.mark.parametrize(("location", "key"), EXAMPLES)
def test_each_area_builds_the_documented_key(location: Location, key: str) -> None:
    assert DEFAULT_LAYOUT.key(location) == key


@pytest.mark.parametrize(("location", "key"), EXAMPLES)
def test_parse_key_is_the_exact_inverse(location: Location, key: str) -> None:
    parsed = DEFAULT_LAYOUT.parse_key(key)
    assert parsed == location
    assert DEFAULT_LAYOUT.key(parsed) == key


def test_parsed_locations_expose_their_parts() -> None:
    location = DEFAULT_LAYOUT.parse_key("inference/alice/th/run-7/out/frame.png")
    assert location.area is Area.INFERENCE
    assert location.twin_id == "alice"
    assert location.field_value("model") == "th"
    assert location.field_value("run") == "run-7"
    assert location.relative == "out/frame.png"
    assert location.fields == (("model", "th"), ("run", "run-7"), ("twin_id", "alice"))


def test_locations_without_a_twin() -> None:
    assert Location.common("th", "a.pth").twin_id is None
    with pytest.raises(KeyError, match="has no field 'run'"):
        Location.common("th", "a.pth").field_value("run")


def test_locations_are_hashable_and_equal_by_value() -> None:
    first = Location.processed("alice", "th", "video/v.mp4")
    second = Location.of(Area.PROCESSED, "video/v.mp4", model="th", twin_id="alice")
    assert first == second
    assert len({first, second}) == 1
    assert Location.scratch("j", 3, "x") == Location.scratch("j", "3", "x")


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: Location.raw("../x", "a"), InvalidTwinId),
        (lambda: Location.raw("alice", "../a"), InvalidRelativeName),
        (lambda: Location.processed("alice", "TH", "a"), InvalidField),
        (lambda: Location.inference("alice", "th", "a/b", "x"), InvalidField),
        (lambda: Location.scratch("job", 0, "x"), InvalidField),
        (lambda: Location.scratch(".job", 1, "x"), InvalidField),
        (lambda: Location.common("th", "/abs"), InvalidRelativeName),
        (lambda: Location(Area.RAW, (("twin_id", "a"), ("twin_id", "b")), "x"), FieldMismatch),
        (lambda: Location(Area.RAW, (("Twin", "a"),), "x"), FieldMismatch),
    ],
)
def test_every_value_is_validated_when_a_location_is_built(
    build: Callable[[], Location], error: type[Exception]
) -> None:
    with pytest.raises(error):
        build()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("foo/x", "key 'foo/x' is in no area; it must start with one of 'raw/', 'processed/', "),
        ("", "key '' is in no area"),
        ("/raw/alice/x", "key '/raw/alice/x' is in no area"),
        ("RAW/alice/x", "key 'RAW/alice/x' is in no area"),
        ("raw", "key 'raw' has too few parts for the raw area: expected 'raw/{twin_id}/<relative name>'"),
        ("raw/alice", "key 'raw/alice' has too few parts for the raw area"),
        ("processed/alice/preprocessed", "key 'processed/alice/preprocessed' has too few parts"),
        ("processed/alice/preprocessed/th", "has too few parts for the processed area"),
        ("processed/alice/pre/th/x", "does not fit the processed area: expected "),
        ("raw/alice/", "relative name '' is invalid: it is empty"),
        ("raw/../x", "key 'raw/../x' is invalid: twin_id '..' is invalid"),
        ("raw/a..b/x", "twin_id 'a..b' is invalid: it contains '..'"),
        ("raw/.hidden/x", "twin_id '.hidden' is invalid"),
        ("raw/alice/../bob/x", "relative name '../bob/x' is invalid: it has a '..' segment"),
        ("raw/alice/a//b", "it has an empty segment"),
        ("raw/alice/./x", "it has a '.' segment"),
        ("raw/alice/a\\b", "it contains a backslash"),
        ("raw/alice/a\x00b", "it contains the control character"),
        ("raw/alice\n/x", "it contains '\\n'"),
        ("processed/alice/preprocessed/TH/x", "model 'TH' is invalid"),
        ("scratch/job/0/x", "attempt '0' is invalid: it is not positive"),
        ("scratch/job/07/x", "attempt '07' is invalid: it has a leading zero"),
        ("inference/alice/th/../x", "run '..' is invalid"),
    ],
)
def test_parse_key_rejects_keys_naming_them(key: str, message: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        DEFAULT_LAYOUT.parse_key(key)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"key {key!r} ")


def test_invalid_key_chains_the_cause() -> None:
    with pytest.raises(InvalidKey) as caught:
        DEFAULT_LAYOUT.parse_key("raw/../x")
    assert isinstance(caught.value.__cause__, InvalidTwinId)


def test_a_key_that_is_not_a_str_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="key must be a str"):
        DEFAULT_LAYOUT.parse_key(b"raw/a/x")  # type: ignore[arg-type]


def test_keys_longer_than_object_stores_accept_are_rejected() -> None:
    relative = "/".join(["\U0001f600" * 60] * 5)  # 300 characters, 1200 UTF-8 bytes
    location = Location.raw("alice", relative)
    with pytest.raises(InvalidKey, match=f"more than the {MAX_KEY_BYTES} object stores accept"):
        DEFAULT_LAYOUT.key(location)
    with pytest.raises(InvalidKey):
        DEFAULT_LAYOUT.parse_key("raw/alice/" + relative)


def test_a_location_whose_fields_do_not_fit_its_area_is_rejected() -> None:
    wrong = Location.of(Area.RAW, "x", twin_id="alice", model="th")
    with pytest.raises(FieldMismatch, match=r"a raw location needs the fields \('twin_id',\)"):
        DEFAULT_LAYOUT.key(wrong)


@pytest.mark.parametrize(
    ("area", "fields", "prefix"),
    [
        (Area.RAW, {}, "raw/"),
        (Area.RAW, {"twin_id": "alice"}, "raw/alice/"),
        (Area.PROCESSED, {}, "processed/"),
        (Area.PROCESSED, {"twin_id": "a"}, "processed/a/"),
        (Area.PROCESSED, {"twin_id": "a", "model": "th"}, "processed/a/preprocessed/th/"),
        (Area.INFERENCE, {"twin_id": "a"}, "inference/a/"),
        (Area.INFERENCE, {"twin_id": "a", "model": "th"}, "inference/a/th/"),
        (Area.INFERENCE, {"twin_id": "a", "model": "th", "run": "r1"}, "inference/a/th/r1/"),
        (Area.COMMON, {"model": "th"}, "common/th/"),
        (Area.SCRATCH, {"job": "j1"}, "scratch/j1/"),
        (Area.SCRATCH, {"job": "j1", "attempt": "2"}, "scratch/j1/2/"),
    ],
)
def test_prefix_of_leading_fields(area: Area, fields: dict[str, str], prefix: str) -> None:
    assert DEFAULT_LAYOUT.prefix(area, **fields) == prefix


def test_a_full_prefix_is_a_prefix_of_every_key_in_it() -> None:
    for location, key in EXAMPLES:
        fields = dict(location.fields)
        assert key.startswith(DEFAULT_LAYOUT.prefix(location.area, **fields))
        assert key == DEFAULT_LAYOUT.prefix(location.area, **fields) + location.relative


@pytest.mark.parametrize(
    ("area", "fields", "error", "message"),
    [
        (Area.PROCESSED, {"model": "th"}, FieldMismatch, "needs 'twin_id' before the fields after it"),
        (Area.INFERENCE, {"twin_id": "a", "run": "r"}, FieldMismatch, "needs 'model'"),
        (Area.SCRATCH, {"attempt": "1"}, FieldMismatch, "needs 'job'"),
        (Area.RAW, {"model": "th"}, FieldMismatch, "the raw area has no field 'model'"),
        (Area.RAW, {"twin_id": "../x"}, InvalidTwinId, "twin_id '../x' is invalid"),
        (Area.COMMON, {"model": "Th"}, InvalidField, "model 'Th' is invalid"),
    ],
)
def test_prefix_rejects_bad_fields(area: Area, fields: dict[str, str], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        DEFAULT_LAYOUT.prefix(area, **fields)
    assert issubclass(error, ValueError)


def test_twin_prefixes_cover_every_area_with_a_twin() -> None:
    assert DEFAULT_LAYOUT.twin_prefixes("alice") == ["raw/alice/", "processed/alice/", "inference/alice/"]


def test_twin_prefixes_do_not_cover_another_twin_sharing_a_name_start() -> None:
    key = DEFAULT_LAYOUT.key(Location.raw("alice2", "x"))
    assert not any(key.startswith(prefix) for prefix in DEFAULT_LAYOUT.twin_prefixes("alice"))


def test_twin_prefixes_validate_the_twin_id() -> None:
    with pytest.raises(InvalidTwinId):
        DEFAULT_LAYOUT.twin_prefixes("a/b")
