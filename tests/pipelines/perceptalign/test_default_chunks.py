"""The default settings end to end: 10 s chunks of 215 frames at 21.5 fps and 220500 samples at 22050 Hz.

One generated clip (10.5 s -> 1 chunk), and the real sun.mp4 (22 s, no sound) with sun.wav (22.5 s) -> 2 chunks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.media.probe import probe
from pipelines.media.synthetic import make_face_video
from pipelines.perceptalign import outputs as files
from tests.pipelines.perceptalign.conftest import DATASET, PREPROCESS
from tests.support.local_pipelines import run_pipeline


def check_chunk_video(path: Path) -> None:
    info = probe(path)
    assert info.video is not None and info.audio is not None, path.name
    assert (info.video.frames, info.video.fps) == (215, 21.5)
    assert (info.audio.sample_rate_hz, info.audio.channels) == (22050, 1)
    assert info.audio.duration_s == pytest.approx(10.0, abs=1e-3)


def test_a_10_5_s_clip_gives_one_10_s_chunk(tmp_path: Path) -> None:
    video = make_face_video(tmp_path / "ten.mp4", seconds=10.5, size=192)
    twin = run_pipeline(PREPROCESS, tmp_path / "twin", raw={"video": video})
    dataset = run_pipeline(DATASET, tmp_path / "data", members={"tim": twin.out}, params={"dataset": "ten"})

    summary = json.loads((twin.out / files.CHUNKS_JSON).read_text())
    assert summary["chunks"] == 1
    assert summary["chunk_frames"] == [[0, 215]] and summary["chunk_samples"] == [[0, 220500]]
    with np.load(twin.out / files.CHUNKS_NPZ) as bundle:
        assert bundle["mel"].shape == (1, 80, 860)  # SpecVQGAN's stored length for 10 s
        assert bundle["flow_0000"].shape == (214, 2, 256, 256)  # short side 192 -> 256
    root = dataset.out
    check_chunk_video(root / "videos/tim/videos_10s_21.5fps/tim_chunk_000.mp4")
    assert np.load(root / "features/tim/melspec_10s_22050hz/tim_chunk_000_mel.npy").shape == (80, 860)
    assert len(list((root / "frames/tim/tim_chunk_000").glob("img_*.jpg"))) == 215
    assert len(list((root / "flow/tim/tim_chunk_000").glob("flow_x_*.jpg"))) == 214
    assert len(list((root / "flow/tim/tim_chunk_000").glob("flow_y_*.jpg"))) == 214
    assert (root / "audio/tim/audio_10s_22050hz/tim_chunk_000.wav").stat().st_size == 44 + 2 * 220500


@pytest.mark.media
@pytest.mark.slow
def test_sun_with_its_separate_speech_gives_two_10_s_chunks(shared_media: Path, tmp_path: Path) -> None:
    raw = {"video": shared_media / "sun.mp4", "audio": shared_media / "sun.wav"}
    twin = run_pipeline(PREPROCESS, tmp_path / "sun", raw=raw)
    dataset = run_pipeline(DATASET, tmp_path / "data", members={"sun": twin.out}, params={"dataset": "sun"})

    summary = json.loads((twin.out / files.CHUNKS_JSON).read_text())
    assert summary["audio_source"] == files.UPLOADED_AUDIO_WAV  # sun.mp4 has no sound track
    assert summary["video_frames"] == 473 and summary["chunks"] == 2  # floor(22 s / 10 s)
    assert summary["tail"]["frames"] == 473 - 430
    assert summary["flow"]["width"] == 256 and summary["flow"]["height"] == 341  # 576x768, short side 256
    assert twin.results["chunks"].metrics["frames_in"] == 430
    root = dataset.out
    for index in range(2):
        check_chunk_video(root / f"videos/sun/videos_10s_21.5fps/sun_chunk_{index:03d}.mp4")
        assert np.load(root / f"features/sun/melspec_10s_22050hz/sun_chunk_{index:03d}_mel.npy").shape == (80, 860)
        assert len(list((root / f"flow/sun/sun_chunk_{index:03d}").glob("flow_*.jpg"))) == 2 * 214
    mel = np.load(root / "features/sun/melspec_10s_22050hz/sun_chunk_000_mel.npy")
    assert 0.2 < mel.mean() < 0.9 and mel.std() > 0.05  # speech, not silence or a clipped constant
    all_items = (root / "splits/sun_all.txt").read_text().splitlines()
    assert all_items == ["sun/sun_chunk_000", "sun/sun_chunk_001"]
