"""perceptalign preprocess on generated twins (2 s chunks): chunk counts, bundle contents, sound sources, refusals."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from pipelines.base import BadInput, Cancelled, StageContext
from pipelines.media.frames import video_info
from pipelines.media.synthetic import make_audio, make_video
from pipelines.perceptalign import outputs as files
from pipelines.perceptalign.chunks_stage import ChunksStage
from pipelines.perceptalign.flow import dequantise
from tests.pipelines.perceptalign.conftest import CHUNK_FRAMES, CHUNK_SAMPLES, Twin, preprocess


def summary_of(twin: Twin) -> dict:
    return json.loads((twin.out / files.CHUNKS_JSON).read_text())


def test_chunks_are_whole_2s_pieces_of_the_paired_recording(moving_twin: Twin) -> None:
    summary = summary_of(moving_twin)
    frames = video_info(moving_twin.out / files.VIDEO_MP4).frames
    kept = summary["timeline"]["frames"]

    assert video_info(moving_twin.out / files.VIDEO_MP4).fps == 21.5
    assert summary["chunks"] == kept // CHUNK_FRAMES == 2  # floor(4.47 s / 2 s)
    assert summary["chunk_frames"] == [[0, 43], [43, 86]]
    assert summary["chunk_samples"] == [[0, 44100], [44100, 88200]]
    assert summary["tail"]["frames"] == kept - 2 * CHUNK_FRAMES > 0
    assert frames is not None and kept <= frames
    assert summary["audio_source"] == files.VIDEO_AUDIO_WAV
    assert summary["flow"]["algorithm"] == "farneback" and summary["flow"]["bound"] == 20.0
    assert "audio" in moving_twin.run.skipped  # no uploaded audio
    with wave.open(str(moving_twin.out / files.AUDIO_WAV)) as handle:
        assert (handle.getframerate(), handle.getnchannels()) == (22050, 1)
        assert handle.getnframes() == summary["timeline"]["samples"]
    metrics = moving_twin.run.results["chunks"].metrics
    assert metrics["frames_in"] == 86 and metrics["chunks"] == 2 and metrics["flow_pairs"] == 84


def test_bundle_holds_a_mel_and_flow_for_every_chunk(moving_twin: Twin, still_twin: Twin) -> None:
    with np.load(moving_twin.out / files.CHUNKS_NPZ) as bundle:
        assert bundle["mel"].shape == (2, 80, 171) and bundle["mel"].dtype == np.float32
        assert bundle["chunk_frames"].tolist() == [[0, 43], [43, 86]]
        assert bundle["chunk_samples"].tolist() == [[0, CHUNK_SAMPLES], [CHUNK_SAMPLES, 2 * CHUNK_SAMPLES]]
        moving = [bundle[f"flow_{k:04d}"] for k in range(2)]
    with np.load(still_twin.out / files.CHUNKS_NPZ) as bundle:
        still = bundle["flow_0000"]
        assert bundle["mel"].shape == (1, 80, 171)

    for flow in moving:
        assert flow.shape == (CHUNK_FRAMES - 1, 2, 256, 256) and flow.dtype == np.uint8
        pixels = np.abs(dequantise(flow, 20.0))
        assert (flow != 128).mean() > 0.3 and pixels.mean() > 0.1  # the face turns, nods and drifts
    assert still.shape == (CHUNK_FRAMES - 1, 2, 256, 256)
    assert np.abs(still - 127.5).mean() < 0.6 and np.isin(still, (127, 128)).mean() > 0.98  # no motion


def test_same_upload_gives_the_same_bytes(moving_twin: Twin, tmp_path: Path) -> None:
    again = preprocess(moving_twin.raw, tmp_path)

    for name in (files.AUDIO_WAV, files.CHUNKS_NPZ, files.CHUNKS_JSON):
        assert (again.out / name).read_bytes() == (moving_twin.out / name).read_bytes(), name


def test_a_recording_shorter_than_one_chunk_succeeds_with_no_chunk(short_twin: Twin) -> None:
    summary = summary_of(short_twin)

    assert summary["chunks"] == 0 and summary["chunk_frames"] == []
    assert "shorter than one 2 s chunk" in summary["unusable"]
    assert short_twin.run.results["chunks"].metrics["frames_in"] == 0
    with np.load(short_twin.out / files.CHUNKS_NPZ) as bundle:
        assert bundle["mel"].shape == (0, 80, 171)


def test_a_silent_video_takes_the_uploaded_audio(dubbed_twin: Twin) -> None:
    summary = summary_of(dubbed_twin)

    assert "audio" in dubbed_twin.run.results and "audio" not in dubbed_twin.run.skipped
    assert not (dubbed_twin.out / files.VIDEO_AUDIO_WAV).exists()
    assert summary["audio_source"] == files.UPLOADED_AUDIO_WAV and summary["chunks"] == 1
    assert dubbed_twin.run.results["audio"].metrics["sample_rate_hz"] == 22050


def test_a_silent_video_without_audio_is_refused(silent_video: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no sound track and no audio was uploaded"):
        preprocess({"video": silent_video}, tmp_path)


def test_an_unrelated_recording_is_refused_by_the_timeline_rule(
    silent_video: Path, uploads: Path, tmp_path: Path
) -> None:
    long_voice = make_audio(uploads / "long_voice.wav", seconds=4.0)

    with pytest.raises(BadInput, match="not one recording"):
        preprocess({"video": silent_video, "audio": long_voice}, tmp_path)


def test_bad_chunk_parameters_are_refused(silent_video: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="whole number"):
        preprocess({"video": silent_video}, tmp_path, duration_s=1.1)  # 23.65 frames


def test_a_faceless_video_is_a_valid_twin_for_this_model(uploads: Path, tmp_path: Path) -> None:
    """No face stage: sound is learned from whole frames (th's landmarks stage would refuse this video)."""
    pattern = make_video(uploads / "pattern.mp4", seconds=2.5, size="160x120")
    run = preprocess({"video": pattern}, tmp_path)

    assert [name for name in run.results] == ["video", "chunks"]
    assert run.results["chunks"].metrics["chunks"] == 1
    assert run.results["chunks"].metrics["flow_width"] == 341  # 160x120 -> short side 256


def test_cancelling_the_chunks_stage_leaves_no_bundle(moving_twin: Twin, tmp_path: Path) -> None:
    reports: list[float] = []
    context = StageContext(
        inputs={"video": moving_twin.out / files.VIDEO_MP4, "video_audio": moving_twin.out / files.VIDEO_AUDIO_WAV},
        output_dir=tmp_path,
        params={"duration_s": 2},
        progress=lambda fraction, message: reports.append(fraction),
        is_cancelled=lambda: len(reports) >= 2,
    )

    with pytest.raises(Cancelled):
        ChunksStage().run(context)
    assert not (tmp_path / files.CHUNKS_NPZ).exists()
    assert [p.name for p in (tmp_path / "chunks").iterdir()] == ["audio.wav"]
