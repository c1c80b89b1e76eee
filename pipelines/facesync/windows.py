"""Where windows start, and which base window (the split unit) each belongs to.

Base windows tile a twin's frames at stride = window (frames [0, W), [W, 2W), ...). Augmentation slides the
window at stride `W // augment_factor`; every window is assigned to the base window nearest to it (ties to the
earlier one), so with factor 2 and an even W the windows starting at 0 and W/2 both belong to base 0. The split
is drawn over base windows, so a base window and its shifted copies always land in the same split.
"""

from __future__ import annotations

import numpy as np


def stride_frames(window_frames: int, augment_factor: int) -> int:
    return max(1, window_frames // augment_factor)


def window_starts(frames: int, window_frames: int, stride: int) -> np.ndarray:
    """(N,) int64 first frames of every whole window of `window_frames` at `stride`; empty when too short."""
    if frames < window_frames:
        return np.empty(0, dtype=np.int64)
    return np.arange(0, frames - window_frames + 1, stride, dtype=np.int64)


def base_windows(starts: np.ndarray, window_frames: int) -> np.ndarray:
    """(N,) int64 index of the base window each window belongs to: the nearest one, ties to the earlier."""
    return (np.asarray(starts, dtype=np.int64) + (window_frames - 1) // 2) // window_frames


def unit_id(twin: str, base: int, window_frames: int) -> str:
    """The split unit's id: the twin and the base window's first frame."""
    return f"{twin}:{base * window_frames:06d}"
