"""Mono PCM16 WAV in and out (what the audio stages write: 16 kHz for th, facesync and lawdnet, 22050 Hz for
perceptalign).

`read_pcm16` / `write_pcm16` keep samples as int16, so cutting audio to a timeline copies the exact samples and
never re-quantises; `write_pcm16` writes no timestamps (same samples, same bytes) and replaces the file atomically.
`read_wav_16k` gives float32 samples of a 16 kHz file, as the th stages read speech.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from pipelines.base import BadInput


def read_pcm16(path: Path, sample_rate_hz: int, *, name: str) -> np.ndarray:
    """(N,) int16 samples; BadInput naming `name` (the file's role) unless it is mono PCM16 at `sample_rate_hz`."""
    try:
        with wave.open(str(path), "rb") as handle:
            shape = (handle.getframerate(), handle.getnchannels(), handle.getsampwidth())
            if shape != (sample_rate_hz, 1, 2):
                raise BadInput(
                    f"{name} is {shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit, not mono PCM16 at "
                    f"{sample_rate_hz} Hz: run the twin's preprocess again with sample_rate_hz={sample_rate_hz}"
                )
            raw = handle.readframes(handle.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise BadInput(f"{name} is not a readable WAV file ({exc}): run the twin's preprocess again") from exc
    samples: np.ndarray = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    return samples


def write_pcm16(path: Path, samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write int16 `samples` as mono PCM16 at `sample_rate_hz` (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with wave.open(str(partial), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(sample_rate_hz)
            handle.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1), as `read_wav_16k` (and librosa reading a PCM16 file) give them."""
    scaled: np.ndarray = samples.astype(np.float32) / np.float32(32768.0)
    return scaled


def read_wav_16k(path: Path) -> np.ndarray:
    """Samples in [-1, 1); BadInput naming the file if it is not 16 kHz mono PCM16."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getframerate() != 16000 or handle.getnchannels() != 1 or handle.getsampwidth() != 2:
                raise BadInput(f"{path.name} is not 16 kHz mono PCM16: run the audio stage again")
            raw = handle.readframes(handle.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise BadInput(f"{path.name} is not a readable WAV file ({exc}): run the audio stage again") from exc
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
