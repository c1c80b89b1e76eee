"""Sequences: cut at every sequence_length kept frames and wherever a sampled frame is missing."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.bilayer.layout import frame_stem, split_sequences


def lengths(frame_index: list[int], sampling_rate: int, sequence_length: int) -> list[list[int]]:
    return [
        [frame_index[p] for p in positions]
        for positions in split_sequences(np.array(frame_index), sampling_rate, sequence_length)
    ]


def test_consecutive_frames_are_cut_every_sequence_length() -> None:
    assert lengths(list(range(0, 50, 5)), 5, 4) == [[0, 5, 10, 15], [20, 25, 30, 35], [40, 45]]


def test_a_missing_sampled_frame_starts_a_new_sequence() -> None:
    assert lengths([0, 25, 75, 100, 125], 25, 100) == [[0, 25], [75, 100, 125]]
    assert lengths([0, 25, 75, 100, 125], 25, 2) == [[0, 25], [75, 100], [125]]


def test_no_frames_no_sequences() -> None:
    assert split_sequences(np.zeros(0, dtype=np.int64), 25, 100) == []


def test_unsorted_frames_are_a_bug() -> None:
    with pytest.raises(ValueError):
        split_sequences(np.array([5, 0]), 5, 10)


def test_frame_stem_is_voxceleb2_shaped() -> None:
    assert frame_stem("train", "ann", "0123456789a", 3, 17) == "train/ann/0123456789a/00003/17"
