"""th preprocess, face part, end to end on the embedded default: landmarks, quality report, crops, FLAME, pictures.

Faces are real photos that ship inside installed wheels (scikit-image's astronaut, matplotlib's Grace Hopper),
moved about in a generated clip, so these tests need no download and no ../shared folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipelines.media.synthetic import face_photo, make_audio, make_face_image, make_face_video, make_video
from pipelines.th.face.align import load_transforms
from pipelines.th.face.landmarks_file import load_landmarks
from tests.support.cli_harness import Platform
from tests.support.flame_files import write_tiny_flame_store
from tests.support.media_checks import check_cfr_h264

PROCESSED = "processed/alice/preprocessed/th"
FRAMES = 50  # 2 s at 25 fps
VIDEO_SIZE = 384


@pytest.fixture
def alice(platform_cli: Platform, tmp_path: Path) -> Platform:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    platform_cli(
        "twin",
        "ingest",
        "alice",
        "--create",
        str(make_face_video(uploads / "clip.mp4", seconds=2, fps=30, size=VIDEO_SIZE)),
        str(make_audio(uploads / "voice.wav", seconds=1.0)),
        str(make_face_image(uploads / "photo.jpg")),
    )
    return platform_cli


def _stages(platform_cli: Platform) -> dict[str, dict[str, object]]:
    job = platform_cli.json("status", "--twin-id", "alice")[0]
    return {stage["stage"]: stage for stage in job["stages"]}


def test_preprocess_finds_tracks_crops_and_reports_on_the_face(alice: Platform) -> None:
    result = alice("run", "--twin-id", "alice", "--task", "preprocess")
    assert "succeeded" in result.output
    stages = _stages(alice)
    assert [stages[name]["state"] for name in ("landmarks", "crops")] == ["succeeded", "succeeded"]
    # FLAME is licensed: without it in the store the stage is skipped and says which key to upload.
    assert stages["flame"]["state"] == "skipped"
    assert "common/th/flame/generic_model.pkl" in str(stages["flame"]["message"])

    face = alice.store / PROCESSED / "face"
    video = load_landmarks(face / "video_landmarks.npz")
    assert video.frames == FRAMES and video.backend == "mediapipe" and (video.width, video.height) == (384, 384)
    assert video.found.mean() >= 0.98 and video.usable.mean() >= 0.98
    # The astronaut's face, anatomically: eyes above the nose tip above the mouth above the chin, her right eye
    # on the image's left, and the face in the upper middle of the frame where the photo has it.
    mean = np.nanmean(video.points, axis=0)
    eyes_y, nose_y, mouth_y, chin_y = mean[36:48, 1].mean(), mean[30, 1], mean[48:68, 1].mean(), mean[8, 1]
    assert eyes_y < nose_y < mouth_y < chin_y
    assert mean[36:42, 0].mean() < mean[42:48, 0].mean()
    assert 100 < mean[:, 0].mean() < 300 and 30 < eyes_y < 200
    # Smoothing makes the landmarks steadier, and the raw points are kept beside the smoothed ones.
    steps = lambda p: np.nanmean(np.abs(np.diff(p, n=2, axis=0)))  # noqa: E731
    assert steps(video.points) < steps(video.points_raw)

    image = load_landmarks(face / "image_landmarks.npz")
    assert image.frames == 1 and bool(image.usable[0]) and (image.width, image.height) == (512, 600)

    quality = json.loads((face / "quality.json").read_text())
    summary = quality["video"]["summary"]
    assert summary["frames"] == FRAMES and summary["found_ratio"] >= 0.98 and summary["frames_dropped"] == 0
    assert summary["face_px_median"] > 80 and quality["video"]["failure"] is None
    assert quality["video"]["jitter"]["smoothed_px"] <= quality["video"]["jitter"]["raw_px"]
    assert quality["image"]["summary"]["frames_with_face"] == 1

    with Image.open(face / "contact_sheet.png") as sheet:
        assert sheet.mode == "RGB" and sheet.width > 1000  # 5 tiles of 256 px in a row

    for size in (256, 512):
        assert check_cfr_h264(face / "crops" / f"video_{size}.mp4") == FRAMES
        with Image.open(face / "crops" / f"image_{size}.png") as crop:
            assert crop.size == (size, size)
    transforms = load_transforms(face / "crops" / "video_transforms.npz")
    assert len(transforms) == FRAMES and transforms.frame_size == (384, 384) and transforms.fps == 25
    # The eyes land in the same place of every crop: the crop follows the moving head.
    eyes = np.stack(
        [transforms.for_size(256)[t] @ np.array([*video.points[t, 36:48].mean(0), 1.0]) for t in range(FRAMES)]
    )
    assert eyes.std(axis=0).max() < 2.0

    shown = alice("twin", "show", "alice").output
    assert f"{PROCESSED}/face/contact_sheet.png  -> " in shown
    listed = alice.json("twin", "show", "alice")["pictures"]
    assert [Path(p["key"]).name for p in listed] == ["contact_sheet.png"] and Path(listed[0]["local_path"]).is_file()


def test_flame_is_fitted_when_the_model_is_in_the_store(alice: Platform) -> None:
    data = write_tiny_flame_store(alice.store / "common" / "th")
    alice("run", "--twin-id", "alice", "--task", "preprocess", "--param", 'flame_iterations={"rigid": 20, "full": 40}')
    stages = _stages(alice)
    assert stages["flame"]["state"] == "succeeded", stages["flame"]
    flame = alice.store / PROCESSED / "flame"
    with np.load(flame / "params.npz") as params:
        assert params["expression"].shape[0] == FRAMES + 1  # every video frame, then the photo
        assert list(params["source"][[0, -1]]) == ["video", "image"] and params["pose"].shape == (FRAMES + 1, 15)
        assert np.isfinite(params["error_px"]).all() and params["camera"].shape == (FRAMES + 1, 3)
    vertices = [line for line in (flame / "neutral.obj").read_text().splitlines() if line.startswith("v ")]
    assert len(vertices) == data.num_vertices
    with Image.open(flame / "preview.png") as preview:
        assert preview.width > VIDEO_SIZE  # the frame and the frame with the mesh, side by side
    listed = [Path(p["key"]).name for p in alice.json("twin", "show", "alice")["pictures"]]
    assert listed == ["contact_sheet.png", "preview.png"]
    assert "landmark error" in str(stages["flame"]["message"])


def test_flame_model_without_its_landmark_embedding_fails_naming_the_keys(alice: Platform) -> None:
    write_tiny_flame_store(alice.store / "common" / "th")
    (alice.store / "common" / "th" / "flame" / "landmark_embedding.npy").unlink()
    alice("run", "--twin-id", "alice", "--task", "preprocess", expect=6)
    job = alice.json("status", "--twin-id", "alice")[0]
    assert job["state"] == "failed" and job["error_kind"] == "weights_missing"
    assert "common/th/flame/landmark_embedding.npy" in job["error"]


def test_flame_required_but_absent_fails_naming_the_keys(alice: Platform) -> None:
    alice("run", "--twin-id", "alice", "--task", "preprocess", "--param", "flame=required", expect=6)
    job = alice.json("status", "--twin-id", "alice")[0]
    assert job["state"] == "failed" and job["error_kind"] == "weights_missing"
    assert "common/th/flame/generic_model.pkl" in job["error"]
    assert _stages(alice)["landmarks"]["state"] == "succeeded"  # the work before it is kept


def test_face_alignment_backend_without_its_weights_fails_naming_the_keys(alice: Platform) -> None:
    alice("run", "--twin-id", "alice", "--task", "preprocess", "--param", "landmark_backend=face_alignment", expect=6)
    job = alice.json("status", "--twin-id", "alice")[0]
    assert job["state"] == "failed" and job["error_kind"] == "weights_missing"
    assert "common/th/face_alignment/2DFAN4-11f355bf06.pth.tar" in job["error"]
    assert "common/th/face_alignment/s3fd-619a316812.pth" in job["error"]


def _failing_video(platform_cli: Platform, video: Path) -> str:
    platform_cli("twin", "ingest", "bob", "--create", str(video))
    before = sorted(p for p in platform_cli.store.rglob("*") if p.is_file())
    result = platform_cli("run", "--twin-id", "bob", "--task", "preprocess", expect=6)
    job = platform_cli.json("status", "--twin-id", "bob")[0]
    assert job["state"] == "failed" and job["error_kind"] == "input"
    failed = [s["stage"] for s in job["stages"] if s["state"] == "failed"]
    assert failed == ["landmarks"]
    # Nothing of the failed stage reached the store; the earlier stages' outputs are intact.
    after = sorted(p for p in platform_cli.store.rglob("*") if p.is_file())
    assert not any("/face/" in p.as_posix() for p in after)
    assert set(before) <= set(after)
    assert "video/video.mp4" in job["error"], job["error"]
    assert "landmarks" in result.output
    status = platform_cli("status", "--twin-id", "bob").output
    assert "landmarks" in status
    return str(job["error"])


def test_a_video_with_no_face_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    error = _failing_video(platform_cli, make_video(tmp_path / "pattern.mp4", seconds=2))
    assert "no face" in error or "face was found in only 0 of 50" in error, error
    assert "upload" in error


def test_a_video_with_two_people_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    # Two portraits side by side, cropped so the two faces are about the same size.
    astronaut = cv2.resize(face_photo("astronaut")[20:340, 60:380], (512, 512))
    hopper = face_photo("grace_hopper")[44:556]
    pair = np.concatenate([astronaut, hopper], axis=1)
    error = _failing_video(platform_cli, make_face_video(tmp_path / "two.mp4", photo=pair, seconds=2, size=320))
    assert "two faces" in error or "second" in error, error
    assert "one person" in error, error


def test_contact_sheet_and_report_are_kept_out_of_a_failed_run(platform_cli: Platform, tmp_path: Path) -> None:
    """A failed landmarks stage leaves no half-written face folder behind in the store or in scratch."""
    _failing_video(platform_cli, make_video(tmp_path / "pattern.mp4", seconds=1))
    leftovers = [p for p in platform_cli.store.rglob("*") if p.is_file() and "scratch" in p.parts]
    assert leftovers == []


def test_a_face_too_small_fails_with_the_reason(platform_cli: Platform, tmp_path: Path) -> None:
    error = _failing_video(platform_cli, make_face_video(tmp_path / "far.mp4", seconds=2, size=160))
    assert "px tall" in error and "at least 80 px" in error, error


def test_the_demo_twin_has_a_real_face(platform_cli: Platform) -> None:
    result = platform_cli("demo")
    assert "succeeded" in result.output, result.output
    listed = [Path(p["key"]).name for p in platform_cli.json("twin", "show", "demo")["pictures"]]
    assert listed == ["contact_sheet.png"]
    shutil.rmtree(platform_cli.data_dir / "demo-media", ignore_errors=True)
