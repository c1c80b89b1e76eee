"""What drives each output frame, engine-independent: which frame of the twin's own video it is built on (head
pose, eyes and blinks come from there), and the 68 landmarks the face must take in that frame.

The twin's video is played forwards and backwards (ping-pong) for as long as the speech lasts, so no jump
appears at a loop; an engine replaces only the mouth (iBUG 48-67) with motion made from the speech.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

MOUTH = slice(48, 68)


def frame_count(duration_s: float, fps: float) -> int:
    """Output frames for speech of `duration_s`: the video ends within one frame of the audio."""
    return max(1, int(round(duration_s * fps)))


def ping_pong(count: int, length: int, usable: np.ndarray | None = None) -> np.ndarray:
    """(count,) indices into a clip of `length` frames, forwards then backwards, repeated.

    With `usable` (length,) bool, only the longest run of usable frames is played (a rejected frame never
    becomes a source); a clip of one usable frame is held still.
    """
    start, stop = 0, length
    if usable is not None and usable.any():
        start, stop = _longest_run(np.asarray(usable, dtype=bool))
    span = stop - start
    if span <= 1:
        return np.full(count, start, dtype=np.int64)
    period = 2 * (span - 1)
    phase = np.arange(count) % period
    return (start + np.where(phase < span, phase, period - phase)).astype(np.int64)


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    best, best_start, run_start = 0, 0, None
    for index, flag in enumerate([*flags.tolist(), False]):
        if flag and run_start is None:
            run_start = index
        elif not flag and run_start is not None:
            if index - run_start > best:
                best, best_start = index - run_start, run_start
            run_start = None
    return best_start, best_start + best


def replace_mouth(base: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    """(T,68,2) landmarks = `base` with iBUG 48-67 replaced by `mouth` (T,20,2)."""
    driving = np.array(base, dtype=np.float32, copy=True)
    driving[:, MOUTH] = mouth
    return driving


def resample_time(values: np.ndarray, source_fps: float, target_fps: float, count: int) -> np.ndarray:
    """Linear interpolation of a (N, ...) sequence at `source_fps` to `count` frames at `target_fps`."""
    if len(values) == 0:
        raise ValueError("nothing to resample")
    times = np.arange(count) / target_fps * source_fps
    left = np.clip(np.floor(times).astype(np.int64), 0, len(values) - 1)
    right = np.clip(left + 1, 0, len(values) - 1)
    weight = (times - np.floor(times)).reshape((-1,) + (1,) * (values.ndim - 1))
    return np.asarray((1 - weight) * values[left] + weight * values[right], dtype=np.float32)


def seconds(samples: int, sample_rate_hz: int) -> float:
    return samples / float(sample_rate_hz) if sample_rate_hz > 0 else math.nan


def fit_length(values: np.ndarray, count: int) -> np.ndarray:
    """Cut `values` (N, ...) to `count` frames, or pad with its last frame: analyses that frame time their own way
    (wav2vec2's 50 Hz, 10 ms speech steps) may differ from round(duration x fps) by a frame."""
    values = np.asarray(values)
    if len(values) >= count:
        return values[:count]
    return np.concatenate([values, np.repeat(values[-1:], count - len(values), axis=0)])


def save_driving(
    path: Path, *, engine: str, fps: float, source_frames: np.ndarray, landmarks: np.ndarray, **extra: np.ndarray
) -> None:
    """The `motion/driving.npz` both engines write and `render` reads: per output frame the twin frame it is built
    on and the 68 landmarks to reach there (float32), plus engine-specific diagnostics in `extra`."""
    arrays: dict[str, Any] = {
        "format_version": np.int32(1),
        "engine": np.asarray(engine),
        "fps": np.float32(fps),
        "source_frames": np.asarray(source_frames),
        "landmarks": np.asarray(landmarks, dtype=np.float32),
        **extra,
    }
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
