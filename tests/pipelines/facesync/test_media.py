"""facesync on a real talking head: talking_512.mp4 (8 s, 25 fps, its own 16 kHz sound track)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.pipelines.facesync.conftest import DATASET, PREPROCESS
from tests.support.local_pipelines import run_pipeline


@pytest.mark.media
def test_real_talking_head_preprocess_and_dataset(shared_media: Path, tmp_path: Path) -> None:
    twin = run_pipeline(PREPROCESS, tmp_path / "twin", raw={"video": shared_media / "talking_512.mp4"})
    with np.load(tmp_path / "twin/facesync/track.npz", allow_pickle=False) as data:
        track = {name: data[name] for name in data.files}
    report = json.loads((tmp_path / "twin/facesync/validation.json").read_text())

    assert twin.skipped == {"audio": "no raw audio was ingested"}
    assert str(track["audio_source"]) == "video/audio.wav"
    assert track["landmarks"].shape == (200, 68, 2) and track["audio"].shape == (200 * 640,)
    assert (report["windows"], report["valid"], report["discarded"]) == (8, 8, {})
    # The pairing is right: the mouth opens when there is sound (inner lips 62/66 against each frame's loudness),
    # and the relation disappears when the audio is moved 2 s against the video.
    mouth = np.linalg.norm(track["landmarks"][:, 66] - track["landmarks"][:, 62], axis=1)
    loudness = 10 * np.log10(np.mean(track["audio"].reshape(200, 640).astype(np.float64) ** 2, axis=1) + 1e-12)
    paired = np.corrcoef(mouth, loudness)[0, 1]
    shifted = np.corrcoef(mouth[50:], loudness[:-50])[0, 1]
    assert paired > 0.1 and paired > shifted + 0.1

    params = {"dataset": "real", "augment_factor": 2}
    dataset = run_pipeline(DATASET, tmp_path / "dataset", members={"talker": tmp_path / "twin"}, params=params)
    manifest = json.loads((tmp_path / "dataset/manifest.json").read_text())
    assert manifest["twins"]["talker"]["taken"]["valid"] == len(range(0, 200 - 25 + 1, 12)) == 15
    assert manifest["split_units"] == {"train": 7, "val": 1}
    metrics = dataset.results["samples"].metrics
    assert (metrics["train_samples"] + metrics["val_samples"], metrics["frames_in"]) == (15, 200)
