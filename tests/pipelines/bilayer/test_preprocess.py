"""bilayer preprocess at pipeline level: what one twin's bundle holds, how sampling counts, and what is refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pipelines.base import BadInput, Cancelled, StageContext
from pipelines.bilayer.frames_stage import FramesStage
from pipelines.bilayer.samples_file import Samples, load_samples
from pipelines.registry import load_pipeline
from tests.pipelines.bilayer.support import FACE_CLIP_FRAMES, MAIN_SAMPLING_RATE, RerunFrames
from tests.support.local_pipelines import LocalRun, run_pipeline


def test_pipeline_shape() -> None:
    pipeline = load_pipeline("bilayer", "preprocess")

    assert (pipeline.model, pipeline.task, pipeline.output_area) == ("bilayer", "preprocess", "processed")
    assert [stage.name for stage in pipeline.stages] == ["video", "landmarks", "frames"]
    frames = pipeline.stage("frames")
    assert [o.relative for o in frames.outputs] == ["bilayer/samples.npz", "bilayer/report.json"]
    assert frames.resources.gpus == 0


def test_bundle_of_a_clean_clip(face_twin: LocalRun, face_samples: Samples) -> None:
    n, size = math.ceil(FACE_CLIP_FRAMES / MAIN_SAMPLING_RATE), 256

    assert face_samples.imgs.shape == (n, size, size, 3) and face_samples.imgs.dtype == np.uint8
    assert face_samples.keypoints.shape == (n, 68, 2) and face_samples.keypoints.dtype == np.float32
    assert face_samples.segs.shape == (n, size, size) and face_samples.segs.dtype == np.uint8
    assert face_samples.frame_index.tolist() == list(range(0, FACE_CLIP_FRAMES, MAIN_SAMPLING_RATE))
    assert (face_samples.fps, face_samples.frames, face_samples.sampling_rate) == (25.0, FACE_CLIP_FRAMES, 5)
    assert len(face_samples.video_id) == 11 and int(face_samples.video_id, 16) >= 0
    assert (face_samples.keypoints >= 0).all() and (face_samples.keypoints <= size - 1).all()
    assert set(np.unique(face_samples.segs).tolist()) == {0, 255}
    person = (face_samples.segs == 255).mean(axis=(1, 2))
    assert (person > 0.1).all() and (person < 0.95).all()
    # the crops follow the face: the nose tip (iBUG 30) sits near the middle, the chin (8) in the lower half
    assert np.abs(face_samples.keypoints[:, 30] - size / 2).max() < size * 0.15
    assert (face_samples.keypoints[:, 8, 1] > size * 0.6).all()

    report = json.loads((face_twin.out / "bilayer/report.json").read_text())
    assert {k: report[k] for k in ("frames_seen", "sampled", "kept", "rejected")} == {
        "frames_seen": FACE_CLIP_FRAMES,
        "sampled": n,
        "kept": n,
        "rejected": {},
    }
    metrics = face_twin.results["frames"].metrics
    assert metrics["frames_in"] == FACE_CLIP_FRAMES and metrics["kept"] == n


@pytest.mark.parametrize("sampling_rate", [None, 7, 1])
def test_sampling_rate_keeps_every_nth_frame(
    sampling_rate: int | None, face_twin: LocalRun, rerun_frames: RerunFrames, tmp_path: Path
) -> None:
    params = {} if sampling_rate is None else {"sampling_rate": sampling_rate}
    k = sampling_rate or 25  # the default: one frame a second at 25 fps

    rerun_frames(face_twin.out, tmp_path, **params)

    samples = load_samples(tmp_path / "bilayer/samples.npz", "rerun")
    assert samples.count == math.ceil(FACE_CLIP_FRAMES / k)
    assert samples.frame_index.tolist() == list(range(0, FACE_CLIP_FRAMES, k))


def test_same_inputs_same_bytes(face_twin: LocalRun, rerun_frames: RerunFrames, tmp_path: Path) -> None:
    rerun_frames(face_twin.out, tmp_path, sampling_rate=MAIN_SAMPLING_RATE)

    for name in ("bilayer/samples.npz", "bilayer/report.json"):
        assert (tmp_path / name).read_bytes() == (face_twin.out / name).read_bytes()


def test_image_size(face_twin: LocalRun, rerun_frames: RerunFrames, tmp_path: Path) -> None:
    rerun_frames(face_twin.out, tmp_path, sampling_rate=25, image_size=128)

    samples = load_samples(tmp_path / "bilayer/samples.npz", "rerun")
    assert samples.imgs.shape == (3, 128, 128, 3) and samples.segs.shape == (3, 128, 128)
    assert (samples.keypoints <= 127).all()


def test_no_usable_sampled_frame_gives_an_empty_bundle(late_face_twin: LocalRun) -> None:
    samples = load_samples(late_face_twin.out / "bilayer/samples.npz", "late")

    assert samples.count == 0 and samples.imgs.shape == (0, 256, 256, 3)
    assert samples.sampled_index.tolist() == [0]
    assert samples.rejected() == {"no_face": 1}
    report = json.loads((late_face_twin.out / "bilayer/report.json").read_text())
    assert report["rejected_frames"] == [{"frame": 0, "reason": "no_face"}]


def test_faceless_video_fails_the_twin(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="face was found in only 0 of 50 frames"):
        run_pipeline(("bilayer", "preprocess"), tmp_path, raw={"video": clips["faceless"]})
    assert not (tmp_path / "bilayer/samples.npz").exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sampling_rate": 0}, "sampling_rate=0"),
        ({"sampling_rate": 2.5}, "sampling_rate=2.5"),
        ({"image_size": "large"}, "image_size='large'"),
        ({"max_outside": 2}, "max_outside=2"),
    ],
)
def test_bad_parameters(
    params: dict[str, object], message: str, face_twin: LocalRun, rerun_frames: RerunFrames, tmp_path: Path
) -> None:
    with pytest.raises(BadInput, match=message):
        rerun_frames(face_twin.out, tmp_path, **params)


def test_video_and_landmarks_of_different_lengths(
    face_twin: LocalRun, late_face_twin: LocalRun, tmp_path: Path
) -> None:
    context = StageContext(
        inputs={
            "video": face_twin.out / "video/video.mp4",
            "video_landmarks": late_face_twin.out / "face/video_landmarks.npz",
        },
        output_dir=tmp_path,
    )
    with pytest.raises(BadInput, match="75 frames but its landmarks have 100"):
        FramesStage().run(context)


def test_cancelled(face_twin: LocalRun, tmp_path: Path) -> None:
    context = StageContext(
        inputs={
            "video": face_twin.out / "video/video.mp4",
            "video_landmarks": face_twin.out / "face/video_landmarks.npz",
        },
        output_dir=tmp_path,
        is_cancelled=lambda: True,
    )
    with pytest.raises(Cancelled):
        FramesStage().run(context)


def test_skipped_without_a_video() -> None:
    assert FramesStage().applies({"video_landmarks"}) is not None
    assert FramesStage().applies({"video", "video_landmarks"}) is None
