"""Where each kept frame goes in the VoxCeleb2-style tree the bi-layer training code reads.

    {imgs|keypoints|segs}/{phase}/{PERSON_ID}/{VIDEO_ID}/{SEQUENCE_ID:05d}/{FRAME_NUM}{.jpg|.npy|.png}

PERSON_ID is the twin id, VIDEO_ID the video's 11-character id, SEQUENCE_ID counts from 00001 per video (as
VoxCeleb2's utterance folders do), FRAME_NUM counts 0..n-1 within each sequence. A sequence is a run of sampled
frames that follow each other (`sampling_rate` frames apart) and holds at most `sequence_length` of them: the
training code draws source and target frames from one video, and a gap (a rejected frame) marks a cut in time.
"""

from __future__ import annotations

import numpy as np


def split_sequences(frame_index: np.ndarray, sampling_rate: int, sequence_length: int) -> list[np.ndarray]:
    """Positions into the kept frames `frame_index` (ascending), one array per sequence, in order.

    A sequence ends after `sequence_length` frames and wherever the next kept frame is not the next sampled one."""
    if sampling_rate < 1 or sequence_length < 1:
        raise ValueError(f"sampling_rate and sequence_length must be >= 1, not {sampling_rate}, {sequence_length}")
    frame_index = np.asarray(frame_index, dtype=np.int64)
    if frame_index.size == 0:
        return []
    if np.any(np.diff(frame_index) <= 0):
        raise ValueError("frame_index must be strictly increasing")
    breaks = np.flatnonzero(np.diff(frame_index) != sampling_rate) + 1
    sequences: list[np.ndarray] = []
    for run in np.split(np.arange(frame_index.size), breaks):
        sequences += [run[start : start + sequence_length] for start in range(0, run.size, sequence_length)]
    return sequences


def frame_stem(phase: str, person: str, video_id: str, sequence_number: int, frame_number: int) -> str:
    """The relative path of one frame below a tree, without the tree and the suffix."""
    return f"{phase}/{person}/{video_id}/{sequence_number:05d}/{frame_number}"
