"""Where a twin's training clips go: non-overlapping runs of `clip_frames` consecutive usable frames.

DINet cuts a video into a fixed grid of 9-frame clips from frame 0 (and drops the last whole one), whatever the
frames show. Here a clip may only hold usable frames, so clips are laid greedily from the left within each run of
usable frames: a bad frame costs the clip it falls in, not every later clip's alignment to the grid. For a video
whose frames are all usable this is DINet's grid, plus its last whole clip.
"""

from __future__ import annotations

import numpy as np


def clip_starts(usable: np.ndarray, clip_frames: int) -> list[int]:
    """First frames of the clips, ascending: each clip is `clip_frames` usable frames, no two clips overlap."""
    if clip_frames < 1:
        raise ValueError(f"clip_frames must be at least 1, not {clip_frames}")
    flags = np.concatenate([[False], np.asarray(usable, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(flags.astype(np.int8)))
    starts: list[int] = []
    for first, stop in zip(edges[::2], edges[1::2], strict=True):  # [first, stop) is one run of usable frames
        starts += range(int(first), int(stop) - clip_frames + 1, clip_frames)
    return starts
