"""lawdnet on a real recording (../shared/media/talking_512.mp4: 8 s, 512x512, 25 fps, AAC 16 kHz, one speaker)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.lawdnet import outputs as files
from pipelines.lawdnet.openface_csv import read_landmarks_csv
from tests.pipelines.lawdnet.framing import assert_framed
from tests.support.local_pipelines import run_pipeline

pytestmark = [pytest.mark.media, pytest.mark.slow]


def test_talking_head_becomes_a_consistent_dataset(shared_media: Path, tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    preprocess = run_pipeline(("lawdnet", "preprocess"), processed, raw={"video": shared_media / "talking_512.mp4"})

    timeline = json.loads((processed / files.TIMELINE_JSON).read_text())
    assert (timeline["frames"], timeline["samples"], timeline["audio_source"]) == (200, 128000, "video/audio.wav")
    assert np.load(processed / files.AUDIO_FEATURES).shape == (200, 29)
    face = preprocess.results["lawdnet_face"].metrics
    assert face["frames_in"] == 200
    # the chin reaches the bottom of this frame: a few crops' mouth regions leave it, nothing else is rejected
    # (187 of 200 were usable with the earlier template framing; the th-based framing must not lose frames)
    assert face["usable_frames"] >= 187 and set(face["unusable_frames"]) <= {"mouth_outside_frame"}
    rows = read_landmarks_csv(processed / files.LANDMARKS_CSV, "csv")
    assert_framed(np.load(processed / files.CROP_LANDMARKS), rows.success)
    crop_points = np.load(processed / files.CROP_LANDMARKS)[rows.success]
    # the mouth (inner lips) of every usable frame sits in LawDNet's mouth region, rows 128-384, columns 32-288
    lips = crop_points[:, 60:68]
    assert (lips[..., 0] > 32).all() and (lips[..., 0] < 288).all()
    assert (lips[..., 1] > 128).all() and (lips[..., 1] < 384).all()
    # she talks: the inner lips open and close across the clip by more than a few crop pixels
    opening = lips[:, 6, 1] - lips[:, 2, 1]  # 66 bottom - 62 top
    assert opening.max() - opening.min() > 10

    dataset = tmp_path / "dataset"
    run_pipeline(("lawdnet", "dataset"), dataset, members={"talk": processed}, params={"dataset": "real"})
    manifest = json.loads((dataset / "manifest.json").read_text())
    clips = json.loads((dataset / files.TRAINING_JSON).read_text())["talk"]["clip_data_list"]
    assert manifest["twins"]["talk"]["taken"]["clips"] == len(clips) >= 15
    assert len(list((dataset / files.CROP_FACE_DIR / "talk").iterdir())) == 200
    assert len(list((dataset / files.FRAME_DIR / "talk").iterdir())) == 200
    assert all(rows.success[clip["start_frame"] : clip["start_frame"] + 9].all() for clip in clips)
