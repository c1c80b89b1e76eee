"""Generated twins for the perceptalign tests, each preprocessed once per session (the expensive part).

Most tests use 2 s chunks (43 frames at 21.5 fps, 44100 samples at 22050 Hz) so a twin of a few seconds gives
several chunks; one test runs the default 10 s.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from PIL import Image

from pipelines.media.synthetic import face_photo, ffmpeg_exe, make_audio, make_face_video
from tests.support.local_pipelines import LocalRun, run_pipeline

PREPROCESS = ("perceptalign", "preprocess")
DATASET = ("perceptalign", "dataset")
CHUNK_S = 2  # 43 frames, 44100 samples
CHUNK_FRAMES = 43
CHUNK_SAMPLES = 44100


def make_still_video(path: Path, *, seconds: float, size: int = 256) -> Path:
    """A face photo that does not move for `seconds`, at 30 fps, with a 44.1 kHz tone: flow must be zero."""
    photo = face_photo()
    side = min(photo.shape[:2])
    square = cv2.resize(photo[:side, (photo.shape[1] - side) // 2 :][:, :side], (size, size))
    picture = path.with_suffix(".png")
    Image.fromarray(square).save(picture)
    command = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-framerate", "30", "-loop", "1", "-i", str(picture),
        "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={seconds}",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return path


@dataclass
class Twin:
    """One generated twin: its uploads and its preprocess run (folder `run.out`)."""

    raw: dict[str, Path]
    run: LocalRun

    @property
    def out(self) -> Path:
        return self.run.out


def preprocess(raw: dict[str, Path], out: Path, **params: object) -> LocalRun:
    return run_pipeline(PREPROCESS, out, raw=raw, params={"duration_s": CHUNK_S, **params})


@pytest.fixture(scope="session")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("perceptalign_uploads")


@pytest.fixture(scope="session")
def moving_twin(uploads: Path, tmp_path_factory: pytest.TempPathFactory) -> Twin:
    """4.5 s of a moving face with its sound: 96 frames at 21.5 fps -> 2 chunks of 43, a tail of 10."""
    video = make_face_video(uploads / "moving.mp4", seconds=4.5, size=256)
    raw = {"video": video}
    return Twin(raw, preprocess(raw, tmp_path_factory.mktemp("moving")))


@pytest.fixture(scope="session")
def still_twin(uploads: Path, tmp_path_factory: pytest.TempPathFactory) -> Twin:
    """2.5 s of a face that does not move: 1 chunk whose flow is all 'no motion'."""
    video = make_still_video(uploads / "still.mp4", seconds=2.5)
    raw = {"video": video}
    return Twin(raw, preprocess(raw, tmp_path_factory.mktemp("still")))


@pytest.fixture(scope="session")
def short_twin(uploads: Path, tmp_path_factory: pytest.TempPathFactory) -> Twin:
    """1.5 s: shorter than one 2 s chunk, so the preprocess succeeds with no chunk."""
    video = make_face_video(uploads / "short.mp4", seconds=1.5, size=128)
    raw = {"video": video}
    return Twin(raw, preprocess(raw, tmp_path_factory.mktemp("short")))


@pytest.fixture(scope="session")
def silent_video(uploads: Path) -> Path:
    """2.5 s of a moving face with no sound track."""
    return make_face_video(uploads / "silent.mp4", seconds=2.5, size=128, audio=False)


@pytest.fixture(scope="session")
def dubbed_twin(uploads: Path, silent_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Twin:
    """The silent video with a separately uploaded 2.5 s audio file: its sound comes from the upload."""
    raw = {"video": silent_video, "audio": make_audio(uploads / "voice.wav", seconds=2.5)}
    return Twin(raw, preprocess(raw, tmp_path_factory.mktemp("dubbed")))
