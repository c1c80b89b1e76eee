"""16 kHz mono PCM16 WAV as int16 samples: cutting the audio to the timeline copies samples, never re-quantises."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from pipelines.base import BadInput

SAMPLE_RATE_HZ = 16000


def read_pcm16(path: Path, name: str) -> np.ndarray:
    """(samples,) int16; BadInput naming `name` when the file is not a 16 kHz mono PCM16 WAV."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getframerate() != SAMPLE_RATE_HZ or handle.getnchannels() != 1 or handle.getsampwidth() != 2:
                raise BadInput(
                    f"{name} is {handle.getframerate()} Hz x{handle.getnchannels()} {8 * handle.getsampwidth()}-bit, "
                    "not 16 kHz mono PCM16: run the twin's preprocess again with sample_rate_hz left at 16000"
                )
            raw = handle.readframes(handle.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise BadInput(f"{name} is not a readable WAV file ({exc}): run the twin's preprocess again") from exc
    samples: np.ndarray = np.frombuffer(raw, dtype="<i2").copy()
    return samples


def write_pcm16(path: Path, samples: np.ndarray) -> None:
    """Write mono 16 kHz PCM16 atomically (a temporary file renamed into place)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with wave.open(str(partial), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(SAMPLE_RATE_HZ)
            handle.writeframes(np.asarray(samples, dtype="<i2").tobytes())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1), as `pipelines.media.wav.read_wav_16k` gives them."""
    return samples.astype(np.float32) / 32768.0
