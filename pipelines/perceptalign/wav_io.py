"""Mono PCM16 WAV in and out, at any rate: the media stages write 22050 Hz here, which `pipelines.media.wav`
(16 kHz only) does not read. Samples stay int16 so cutting a chunk copies the exact bytes."""

from __future__ import annotations

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
                    f"{name} is {shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit; this model needs mono "
                    f"PCM16 at {sample_rate_hz} Hz: run the twin's preprocess again with the same sample_rate_hz"
                )
            raw = handle.readframes(handle.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise BadInput(f"{name} is not a readable WAV file ({exc}): run the twin's preprocess again") from exc
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def write_pcm16(path: Path, samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write int16 `samples` as mono PCM16 (the wave module writes no timestamps: same samples, same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate_hz)
        handle.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1), as librosa.load reads a PCM16 file (what SpecVQGAN's mel script sees)."""
    scaled: np.ndarray = samples.astype(np.float32) / np.float32(32768.0)
    return scaled
