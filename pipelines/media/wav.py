"""Reading the normalised speech (16 kHz mono PCM16 WAV, as the audio stages write it) into float32 samples."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from pipelines.base import BadInput


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
