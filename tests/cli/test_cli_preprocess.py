"""`platform run --task preprocess` end to end on the embedded default: outputs, skips, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.media.synthetic import make_audio, make_face_image, make_face_video, make_video
from tests.support.cli_harness import Platform
from tests.support.media_checks import check_cfr_h264, check_wav_16k_mono

PROCESSED = "processed/alice/preprocessed/th"


def store_files(platform_cli: Platform) -> dict[str, bytes]:
    return {
        p.relative_to(platform_cli.store).as_posix(): p.read_bytes()
        for p in platform_cli.store.rglob("*")
        if p.is_file() and ".twinplatform" not in p.parts
    }


@pytest.fixture
def alice(platform_cli: Platform, tmp_path: Path) -> Platform:
    media = tmp_path / "uploads"
    media.mkdir()
    platform_cli(
        "twin",
        "ingest",
        "alice",
        "--create",
        str(make_face_video(media / "clip.mp4", seconds=2, fps=30)),
        str(make_audio(media / "voice.wav", seconds=1.5, sample_rate_hz=44100)),
        str(make_face_image(media / "photo.jpg")),
    )
    return platform_cli


def test_preprocess_writes_normalised_media_under_the_seed_keys(alice: Platform) -> None:
    result = alice("run", "--twin-id", "alice", "--task", "preprocess")
    assert "succeeded" in result.output
    files = store_files(alice)
    media_keys = [k for k in files if k.startswith("processed/") and "/face/" not in k]
    assert sorted(media_keys) == [
        f"{PROCESSED}/audio/audio.wav",
        f"{PROCESSED}/image/image.png",
        f"{PROCESSED}/video/audio.wav",
        f"{PROCESSED}/video/video.mp4",
    ]
    assert check_cfr_h264(alice.store / f"{PROCESSED}/video/video.mp4") == 50  # 2 s at 25 fps
    assert abs(check_wav_16k_mono(alice.store / f"{PROCESSED}/audio/audio.wav") - 1.5) < 0.01
    assert abs(check_wav_16k_mono(alice.store / f"{PROCESSED}/video/audio.wav") - 2.0) < 0.05
    job = alice.json("status", "--twin-id", "alice")[0]
    assert job["state"] == "succeeded" and [s["state"] for s in job["stages"]] == ["succeeded"] * 5 + ["skipped"]


def test_second_run_does_no_work_and_says_so(alice: Platform) -> None:
    alice("run", "--twin-id", "alice", "--task", "preprocess")
    before = store_files(alice)
    mtimes = {p: p.stat().st_mtime_ns for p in alice.store.rglob("*") if p.is_file()}
    result = alice("run", "--twin-id", "alice", "--task", "preprocess")
    assert "nothing to do" in result.output
    assert store_files(alice) == before
    assert {p: p.stat().st_mtime_ns for p in alice.store.rglob("*") if p.is_file()} == mtimes


def test_deleting_one_output_reruns_only_its_stage(alice: Platform) -> None:
    alice("run", "--twin-id", "alice", "--task", "preprocess")
    (alice.store / f"{PROCESSED}/image/image.png").unlink()
    job = alice.json("run", "--twin-id", "alice", "--task", "preprocess")
    # The photo's bytes come out the same, so the face stages that read it find their outputs up to date.
    assert {s["stage"]: s["state"] for s in job["stages"]} == {
        "audio": "skipped",
        "video": "skipped",
        "image": "succeeded",
        "landmarks": "skipped",
        "crops": "skipped",
        "flame": "skipped",
    }
    assert (alice.store / f"{PROCESSED}/image/image.png").is_file()


def _bad_input_case(platform_cli: Platform, tmp_path: Path, name: str, content: bytes | Path, *kind: str) -> str:
    """Ingest one bad file beside a good photo, run preprocess; return the failure text after checking that
    the job failed with its reason recorded and nothing else in the store changed."""
    uploads = tmp_path / "bad"
    uploads.mkdir(exist_ok=True)
    bad = uploads / name
    if isinstance(content, Path):
        shutil.copyfile(content, bad)
    else:
        bad.write_bytes(content)
    platform_cli("twin", "ingest", "alice", "--create", str(make_face_image(uploads / "photo.jpg")))
    platform_cli("twin", "ingest", "alice", str(bad), *kind)
    before = store_files(platform_cli)
    result = platform_cli("run", "--twin-id", "alice", "--task", "preprocess", expect=6)
    job = platform_cli.json("status", "--twin-id", "alice")[0]
    assert job["state"] == "failed" and job["error_kind"] == "input"
    assert name in job["error"], job["error"]
    assert name in result.output
    after = store_files(platform_cli)
    assert {k: v for k, v in after.items() if k.startswith("raw/")} == {
        k: v for k, v in before.items() if k.startswith("raw/")
    }
    failed_stage = next(s for s in job["stages"] if s["state"] == "failed")
    assert not any(k.startswith(f"{PROCESSED}/{failed_stage['stage']}/") for k in after)
    return str(job["error"])


def test_truncated_mp4_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    good = make_video(tmp_path / "full.mp4", seconds=2)
    error = _bad_input_case(platform_cli, tmp_path, "cut.mp4", good.read_bytes()[: good.stat().st_size // 2])
    assert "stage video" in error


def test_zero_byte_file_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    error = _bad_input_case(platform_cli, tmp_path, "empty.wav", b"")
    assert "empty" in error


def test_text_file_named_wav_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    error = _bad_input_case(platform_cli, tmp_path, "notes.wav", b"these are meeting notes, not audio\n" * 20)
    assert "stage audio" in error


def test_image_with_no_pixels_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)  # a PNG that declares 0 x 0 pixels
    chunk = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    png = b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    uploads = tmp_path / "bad"
    uploads.mkdir()
    (uploads / "blank.png").write_bytes(png)
    platform_cli("twin", "ingest", "alice", "--create", str(make_audio(uploads / "v.wav", seconds=0.3)))
    platform_cli("twin", "ingest", "alice", str(uploads / "blank.png"))
    platform_cli("run", "--twin-id", "alice", "--task", "preprocess", expect=6)
    job = platform_cli.json("status", "--twin-id", "alice")[0]
    assert job["state"] == "failed" and "blank.png" in job["error"] and "stage image" in job["error"]


def test_audio_only_mp4_offered_as_video_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    import subprocess

    from pipelines.media.synthetic import ffmpeg_exe

    audio_only = tmp_path / "voice_only.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(audio_only),
        ],
        check=True,
    )
    error = _bad_input_case(platform_cli, tmp_path, "voice_only.mp4", audio_only, "--kind", "video")
    assert "no video stream" in error
