"""Preprocess against PostgreSQL and a real S3 HTTP endpoint (moto server), checked with a plain boto3 client."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipelines.media.synthetic import make_audio, make_face_image, make_face_video
from tests.support.cli_harness import Platform
from tests.support.media_checks import check_cfr_h264, check_wav_16k_mono
from tests.support.s3_fixtures import MotoBucket
from tests.support.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

SEED_KEYS = [
    "processed/alice/preprocessed/th/audio/audio.wav",
    "processed/alice/preprocessed/th/face/contact_sheet.png",
    "processed/alice/preprocessed/th/face/crops/image_256.png",
    "processed/alice/preprocessed/th/face/crops/image_512.png",
    "processed/alice/preprocessed/th/face/crops/image_transforms.npz",
    "processed/alice/preprocessed/th/face/crops/video_256.mp4",
    "processed/alice/preprocessed/th/face/crops/video_512.mp4",
    "processed/alice/preprocessed/th/face/crops/video_transforms.npz",
    "processed/alice/preprocessed/th/face/image_landmarks.npz",
    "processed/alice/preprocessed/th/face/quality.json",
    "processed/alice/preprocessed/th/face/video_landmarks.npz",
    "processed/alice/preprocessed/th/image/image.png",
    "processed/alice/preprocessed/th/video/audio.wav",
    "processed/alice/preprocessed/th/video/video.mp4",
    "raw/alice/audio/voice.wav",
    "raw/alice/image/photo.jpg",
    "raw/alice/video/clip.mp4",
]


@pytest.fixture
def production(platform_cli: Platform, fresh_postgres_url: str, s3_bucket: MotoBucket) -> Platform:
    platform_cli.env.update(
        PLATFORM_DATABASE_URL=fresh_postgres_url,
        PLATFORM_STORE_URL=f"s3://{s3_bucket.name}",
        PLATFORM_S3_ENDPOINT_URL=s3_bucket.endpoint_url,
        PLATFORM_S3_REGION=REGION,
        PLATFORM_S3_ACCESS_KEY_ID=ACCESS_KEY_ID,
        PLATFORM_S3_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
    )
    return platform_cli


def _ingest(production: Platform, tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    production(
        "twin",
        "ingest",
        "alice",
        "--create",
        str(make_face_video(uploads / "clip.mp4", seconds=2)),
        str(make_audio(uploads / "voice.wav", seconds=1.0)),
        str(make_face_image(uploads / "photo.jpg")),
    )


def test_server_database_must_be_migrated_first(production: Platform) -> None:
    result = production("twin", "ls", expect=3)
    assert "platform db upgrade" in result.output


def test_preprocess_leaves_exactly_the_seed_keys_readable_by_any_client(
    production: Platform, s3_bucket: MotoBucket, tmp_path: Path
) -> None:
    production("db", "upgrade")
    _ingest(production, tmp_path)
    production("run", "--twin-id", "alice", "--task", "preprocess")
    client = s3_bucket.plain_client()
    listing = client.list_objects_v2(Bucket=s3_bucket.name)
    assert sorted(obj["Key"] for obj in listing["Contents"]) == SEED_KEYS
    for key in SEED_KEYS:
        response = client.get_object(Bucket=s3_bucket.name, Key=key)
        body = response["Body"].read()
        assert response["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
        local = tmp_path / "check" / key
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(body)
    assert check_cfr_h264(tmp_path / "check" / "processed/alice/preprocessed/th/video/video.mp4") == 50
    assert check_cfr_h264(tmp_path / "check" / "processed/alice/preprocessed/th/face/crops/video_512.mp4") == 50
    assert abs(check_wav_16k_mono(tmp_path / "check" / SEED_KEYS[0]) - 1.0) < 0.01
    jobs = production.json("jobs", "ls")
    assert [job["state"] for job in jobs] == ["succeeded"]
    # The second run does no work: every stage is skipped as up to date and no object changes.
    etags = {obj["Key"]: obj["ETag"] for obj in listing["Contents"]}
    assert "nothing to do" in production("run", "--twin-id", "alice", "--task", "preprocess").output
    again = client.list_objects_v2(Bucket=s3_bucket.name)["Contents"]
    assert {obj["Key"]: obj["ETag"] for obj in again} == etags


def test_a_bucket_that_does_not_exist(production: Platform, tmp_path: Path) -> None:
    production("db", "upgrade")
    _ingest(production, tmp_path)
    production.env["PLATFORM_STORE_URL"] = "s3://no-such-bucket-here"
    result = production("twin", "ingest", "alice", str(make_audio(tmp_path / "more.wav", seconds=0.2)), expect=3)
    assert "no-such-bucket-here" in result.output and "does not exist" in result.output
    result = production("run", "--twin-id", "alice", "--task", "preprocess", expect=6)
    assert "no-such-bucket-here" in result.output
    job = production.json("status", "--twin-id", "alice")[0]
    assert job["state"] == "failed" and job["error_kind"] == "config" and "no-such-bucket-here" in job["error"]


def test_a_dataset_build_lands_under_datasets_with_the_checksums_in_its_manifest(
    production: Platform, s3_bucket: MotoBucket, tmp_path: Path
) -> None:
    from tests.support import kit_datasets

    kit_datasets.register()
    production("db", "upgrade")
    for twin, size in (("a", 40), ("b", 20)):
        upload = tmp_path / f"{twin}.wav"
        upload.write_bytes(b"x" * size)
        production("twin", "ingest", twin, str(upload), "--kind", "audio", "--create")
    production("dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "a,b")
    production("dataset", "build", "--model", "kitds", "--name", "v1", "--twins", "a,b", "--param", "min_bytes=30")
    client = s3_bucket.plain_client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket.name, Prefix="datasets/")["Contents"])
    # the second build excluded b: its item was pruned, not left behind from the first build
    assert keys == [f"datasets/kitds/v1/{name}" for name in ("items/a.json", "manifest.json", "splits.json")]
    manifest = json.loads(client.get_object(Bucket=s3_bucket.name, Key=keys[1])["Body"].read())
    source = manifest["twins"]["a"]["inputs"]["size"]
    body = client.get_object(Bucket=s3_bucket.name, Key=source["key"])["Body"].read()
    assert source["checksum"] == hashlib.sha256(body).hexdigest()
    assert "fewer than min_bytes=30" in manifest["excluded"]["b"]
    assert not client.list_objects_v2(Bucket=s3_bucket.name, Prefix="scratch/").get("Contents")
