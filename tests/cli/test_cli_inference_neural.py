"""`platform run --task inference --engine neural` end to end on the embedded default, with tiny random-weight
FaceFormer and BFv2v checkpoints in the real key layouts and a tiny FLAME model in the store.

Random weights draw nonsense inside the face, so what is checked is what does not depend on them: the MP4 is H.264 +
AAC at 25 fps and as long as the speech (within one frame), every pixel outside the pasted face crop is the twin's
own frame (ping-pong order), the mouth landmarks come from FaceFormer, and each missing model file is named.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.media.frames import read_frames
from pipelines.media.synthetic import make_audio, make_face_image, make_face_video
from tests.support.cli_harness import Platform
from tests.support.flame_files import write_tiny_flame_store
from tests.support.neural_files import write_tiny_bfv2v, write_tiny_faceformer

SPEECH_S = 1.7


@pytest.fixture
def alice(platform_cli: Platform, tmp_path: Path) -> Platform:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    platform_cli(
        "twin",
        "ingest",
        "alice",
        "--create",
        str(make_face_video(uploads / "clip.mp4", seconds=1.2, fps=25)),
        str(make_face_image(uploads / "photo.jpg")),
    )
    common = platform_cli.store / "common" / "th"
    data = write_tiny_flame_store(common)
    platform_cli(
        "run", "--twin-id", "alice", "--task", "preprocess", "--param", 'flame_iterations={"rigid": 10, "full": 20}'
    )
    write_tiny_faceformer(common / "checkpoints" / "vocaset.pth", vertice_dim=3 * data.num_vertices)
    write_tiny_bfv2v(common / "checkpoints" / "bfv2v.pth.tar")
    make_audio(tmp_path / "speech.wav", seconds=SPEECH_S)
    return platform_cli


def test_neural_inference_writes_a_25fps_mp4_as_long_as_the_speech(alice: Platform, tmp_path: Path) -> None:
    job = alice.json(
        "run",
        "--twin-id",
        "alice",
        "--task",
        "inference",
        "--engine",
        "neural",
        "--audio",
        str(tmp_path / "speech.wav"),
    )
    assert job["state"] == "succeeded", job
    assert [s["stage"] for s in job["stages"]] == ["audio", "motion", "render", "lipsync"]
    run = job["params"]["run"]
    folder = alice.store / "inference" / "alice" / "th" / run
    output = folder / "video.mp4"
    with av.open(str(output)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert video.average_rate == 25
        frames = video.frames
        audio_s = float(audio.duration * audio.time_base)
    assert frames == round(SPEECH_S * 25)
    assert abs(frames / 25 - SPEECH_S) <= 1 / 25 and abs(audio_s - SPEECH_S) <= 1 / 25 + 0.03

    with np.load(folder / "motion" / "driving.npz") as driving:
        sources, points = driving["source_frames"], driving["landmarks"]
    assert len(sources) == frames and points.shape == (frames, 68, 2)
    twin = np.concatenate(list(read_frames(alice.store / "processed/alice/preprocessed/th/video/video.mp4", 32)))
    rendered = np.concatenate(list(read_frames(output, 32)))
    # Outside the face (the top corners of a head-and-shoulders frame) every output frame is its source frame.
    errors = []
    for t in range(frames):
        corner = np.abs(rendered[t, :40, :40].astype(int) - twin[sources[t], :40, :40].astype(int)).mean()
        errors.append(corner)
    # Re-encoding the twin's detailed background costs ~2.5 levels; a pasted random face costs far more.
    assert np.median(errors) < 3.5 and max(errors) < 4.5, np.round(errors, 2)
    inside = []
    for t in range(frames):
        x0, y0 = np.floor(points[t, 36:68].min(0)).astype(int)
        x1, y1 = np.ceil(points[t, 36:68].max(0)).astype(int)
        inside.append(np.abs(rendered[t, y0:y1, x0:x1].astype(int) - twin[sources[t], y0:y1, x0:x1]).mean())
    assert np.median(inside) > 3 * np.median(errors), np.round(inside, 1)


def test_missing_neural_checkpoints_are_named(alice: Platform, tmp_path: Path) -> None:
    for name in ("bfv2v.pth.tar", "vocaset.pth"):  # the render stage's checkpoint, then the motion stage's
        (alice.store / "common/th/checkpoints" / name).unlink()
        speech = str(tmp_path / "speech.wav")
        alice("run", "--twin-id", "alice", "--task", "inference", "--engine", "neural", "--audio", speech, expect=6)
        job = alice.json("status", "--twin-id", "alice")[0]
        assert job["state"] == "failed" and job["error_kind"] == "weights_missing"
        assert f"common/th/checkpoints/{name}" in job["error"]


def test_models_verify_lists_every_file_in_the_store(alice: Platform) -> None:
    result = alice("models", "verify")
    for key in (
        "common/th/checkpoints/vocaset.pth",
        "common/th/checkpoints/bfv2v.pth.tar",
        "common/th/flame/generic_model.pkl",
        "common/th/flame/landmark_embedding.npy",
    ):
        assert key in result.output
    assert "FaceFormer vocaset" in result.output and "BFv2v generator" in result.output
    assert "FAIL" not in result.output
