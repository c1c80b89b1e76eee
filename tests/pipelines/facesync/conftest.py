"""Preprocessed facesync twins, made once per session and shared by the preprocess and dataset tests.

    astronaut  3 s face video (30 fps, a 440 Hz tone as its sound track), no raw audio
    grace      4 s face video of another person plus a raw 48 kHz stereo audio upload (tone bursts)
    mute       2 s face video plus a raw audio upload of digital silence: every window is invalid
    blank      2 s faceless test pattern: its preprocess fails at `landmarks` (what the platform excludes)
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.media.synthetic import face_photo, make_audio, make_face_video, make_video
from tests.support.local_pipelines import LocalRun, run_pipeline

PREPROCESS = ("facesync", "preprocess")
DATASET = ("facesync", "dataset")


@dataclass(frozen=True)
class Twin:
    out: Path  # the twin's preprocess folder (processed/{twin}/preprocessed/facesync/ in the store)
    run: LocalRun


def write_wav(path: Path, samples: np.ndarray, sample_rate_hz: int = 16000) -> Path:
    """Mono PCM16 WAV of int16 `samples`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate_hz)
        handle.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def preprocess(folder: Path, raw: dict[str, Path]) -> Twin:
    out = folder / "out"
    return Twin(out, run_pipeline(PREPROCESS, out, raw=raw))


@pytest.fixture(scope="session")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Twin:
    folder = tmp_path_factory.mktemp("facesync_astronaut")
    return preprocess(folder, {"video": make_face_video(folder / "talk.mp4", seconds=3.0)})


@pytest.fixture(scope="session")
def grace(tmp_path_factory: pytest.TempPathFactory) -> Twin:
    folder = tmp_path_factory.mktemp("facesync_grace")
    video = make_face_video(folder / "talk.mp4", photo=face_photo("grace_hopper")[44:556], seconds=4.0)
    return preprocess(folder, {"video": video, "audio": make_audio(folder / "voice.wav", seconds=4.0)})


@pytest.fixture(scope="session")
def mute(tmp_path_factory: pytest.TempPathFactory) -> Twin:
    folder = tmp_path_factory.mktemp("facesync_mute")
    video = make_face_video(folder / "talk.mp4", seconds=2.0)
    return preprocess(folder, {"video": video, "audio": write_wav(folder / "silence.wav", np.zeros(32000))})


@dataclass(frozen=True)
class FailedTwin:
    out: Path
    error: BadInput


@pytest.fixture(scope="session")
def blank(tmp_path_factory: pytest.TempPathFactory) -> FailedTwin:
    folder = tmp_path_factory.mktemp("facesync_blank")
    video = make_video(folder / "pattern.mp4", seconds=2.0)
    with pytest.raises(BadInput) as caught:
        run_pipeline(PREPROCESS, folder / "out", raw={"video": video})
    return FailedTwin(folder / "out", caught.value)
