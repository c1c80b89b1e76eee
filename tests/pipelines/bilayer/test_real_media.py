"""bilayer on real recordings (../shared/media): a talking head close to the camera, and an upper-body shot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pipelines.bilayer.samples_file import load_samples
from tests.pipelines.bilayer.support import RerunFrames
from tests.support.local_pipelines import run_pipeline


def check_samples(folder: Path, frames: int) -> None:
    samples = load_samples(folder / "bilayer/samples.npz", folder.name)
    report = json.loads((folder / "bilayer/report.json").read_text())
    assert report["frames_seen"] == frames
    assert samples.count == math.ceil(frames / 25) == report["kept"]  # every frame of these clips is usable
    assert (samples.keypoints >= 0).all() and (samples.keypoints <= 255).all()
    person = (samples.segs == 255).mean(axis=(1, 2))
    assert (person > 0.1).all() and (person < 0.95).all(), person
    assert (samples.segs[:, 128, 128] == 255).all()  # the middle of a face crop is the person


@pytest.mark.media
def test_talking_head(shared_media: Path, tmp_path: Path, rerun_frames: RerunFrames) -> None:
    twin = tmp_path / "talking"

    run = run_pipeline(("bilayer", "preprocess"), twin, raw={"video": shared_media / "talking_512.mp4"})
    run_pipeline(("bilayer", "dataset"), tmp_path / "dataset", members={"talking": twin}, params={"dataset": "x"})

    check_samples(twin, 200)
    assert run.results["frames"].metrics["frames_in"] == 200
    jpegs = sorted((tmp_path / "dataset/imgs/train/talking").rglob("*.jpg"))
    assert len(jpegs) == 8
    # The face fills most of this 512x512 frame: each crop reaches 15-25 % beyond the frame. Below the padding's
    # black the mask must not call it a person, and a stricter max_outside rejects those frames.
    samples = load_samples(twin / "bilayer/samples.npz", "talking")
    outside_rows = samples.boxes[:, 3] > 512
    assert outside_rows.any()
    assert (samples.segs[outside_rows, -1, :] == 0).all()
    strict = rerun_frames(twin, tmp_path / "strict", max_outside=0.1).results["frames"]
    assert strict.metrics["kept"] + strict.metrics["rejected"].get("crop_outside_frame", 0) == 8
    assert strict.metrics["rejected"].get("crop_outside_frame", 0) > 0


@pytest.mark.media
@pytest.mark.slow
def test_upper_body_shot(shared_media: Path, tmp_path: Path) -> None:
    run = run_pipeline(("bilayer", "preprocess"), tmp_path, raw={"video": shared_media / "sun.mp4"})

    check_samples(tmp_path, 550)
    assert np.isclose(run.results["frames"].metrics["kept"], 22)
