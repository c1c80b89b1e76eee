"""Checks a user would make on outputs, written independently of the platform's own probe (PyAV and `wave`)."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av


def check_cfr_h264(path: Path, fps: int = 25) -> int:
    """Assert an H.264 yuv420p video at a constant `fps` with no rotation left; return its frame count."""
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 0, f"{path} should be video only"
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264", stream.codec_context.name
        assert stream.codec_context.format.name == "yuv420p", stream.codec_context.format.name
        assert stream.average_rate == Fraction(fps), stream.average_rate
        timestamps = [frame.pts * stream.time_base for frame in container.decode(stream)]
    steps = {b - a for a, b in zip(timestamps, timestamps[1:], strict=False)}
    assert steps == {Fraction(1, fps)}, f"frame steps {steps} are not a constant 1/{fps} s"
    return len(timestamps)


def check_wav_16k_mono(path: Path) -> float:
    """Assert PCM16 mono 16 kHz; return its duration in seconds."""
    with wave.open(str(path), "rb") as handle:
        assert (handle.getnchannels(), handle.getframerate(), handle.getsampwidth()) == (1, 16000, 2)
        return handle.getnframes() / 16000
