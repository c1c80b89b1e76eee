"""The per-twin bundle: written the same way every time, read back exactly, refused when damaged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.bilayer.samples_file import Samples, load_samples, save_samples


def test_round_trip_is_exact_and_byte_stable(face_samples: Samples, tmp_path: Path) -> None:
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    save_samples(first, face_samples)
    save_samples(second, face_samples)

    loaded = load_samples(first, "a")

    assert first.read_bytes() == second.read_bytes()
    for field in dataclasses.fields(Samples):
        assert np.array_equal(np.asarray(getattr(loaded, field.name)), np.asarray(getattr(face_samples, field.name)))


def test_an_empty_bundle_is_valid(face_samples: Samples, tmp_path: Path) -> None:
    size = face_samples.image_size
    empty = dataclasses.replace(
        face_samples,
        imgs=np.zeros((0, size, size, 3), np.uint8),
        keypoints=np.zeros((0, 68, 2), np.float32),
        segs=np.zeros((0, size, size), np.uint8),
        frame_index=np.zeros(0, np.int64),
        boxes=np.zeros((0, 4), np.int32),
        sampled_reason=np.full(face_samples.sampled_index.shape, "blurred"),
    )
    save_samples(tmp_path / "empty.npz", empty)

    loaded = load_samples(tmp_path / "empty.npz", "empty")

    assert loaded.count == 0
    assert loaded.rejected() == {"blurred": face_samples.sampled_index.size}


def test_a_damaged_file_is_bad_input_naming_it(face_samples: Samples, tmp_path: Path) -> None:
    path = tmp_path / "samples.npz"
    save_samples(path, face_samples)
    path.write_bytes(path.read_bytes()[:1000])

    with pytest.raises(BadInput, match="ann's samples.*bilayer preprocess again"):
        load_samples(path, "ann's samples")


def test_arrays_that_do_not_fit_together_are_refused(face_samples: Samples, tmp_path: Path) -> None:
    broken = dataclasses.replace(face_samples, keypoints=face_samples.keypoints[:-1])

    with pytest.raises(ValueError, match="keypoints"):
        save_samples(tmp_path / "broken.npz", broken)
