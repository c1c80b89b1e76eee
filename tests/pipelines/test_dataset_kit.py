"""Shared parts of dataset models: reproducible splits and numpy mel spectrograms."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.dataset_kit.splits import assign_splits, split_sizes
from pipelines.media.spectral import MelConfig, _hz_to_mel, log_mel, mel_filterbank


def test_split_sizes_are_exact_and_the_last_split_takes_the_rest() -> None:
    assert split_sizes(10, {"train": 0.9, "val": 0.1}) == {"train": 9, "val": 1}
    assert split_sizes(7, {"train": 0.8, "valid": 0.1, "test": 0.1}) == {"train": 6, "valid": 1, "test": 0}
    assert split_sizes(0, {"train": 0.9, "val": 0.1}) == {"train": 0, "val": 0}
    with pytest.raises(ValueError, match="sum to at most 1"):
        split_sizes(10, {"train": 0.9, "val": 0.2, "test": 0.0})


def test_a_split_depends_on_the_ids_and_the_seed_only() -> None:
    items = [f"twin{i}_{j:04d}" for i in range(3) for j in range(40)]
    first = assign_splits(items, {"train": 0.75, "val": 0.25}, seed=7)
    assert len(first["train"]) == 90 and len(first["val"]) == 30
    assert sorted(first["train"] + first["val"]) == sorted(items)
    assert assign_splits(list(reversed(items)), {"train": 0.75, "val": 0.25}, seed=7) == first
    assert assign_splits(items, {"train": 0.75, "val": 0.25}, seed=8) != first
    with pytest.raises(ValueError, match="unique"):
        assign_splits(["a", "a"], {"train": 1.0}, seed=0)


def test_mel_rows_follow_the_hop_and_a_tone_lands_in_its_band() -> None:
    config = MelConfig(sample_rate_hz=22050, n_fft=1024, hop_length=256, n_mels=80, fmin_hz=125, fmax_hz=7600)
    t = np.arange(22050 * 2) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    mel = log_mel(tone, config)
    assert mel.shape == (1 + tone.size // 256, 80) and mel.dtype == np.float32
    edges = np.linspace(_hz_to_mel(np.array(125.0)), _hz_to_mel(np.array(7600.0)), 82)
    expected_band = int(np.argmin(np.abs(edges[1:-1] - _hz_to_mel(np.array(1000.0)))))
    assert abs(int(np.argmax(mel[40])) - expected_band) <= 1
    silence = log_mel(np.zeros(22050, dtype=np.float32), config)
    assert np.isfinite(silence).all() and np.allclose(silence, np.log(1e-5))


def test_mel_filters_cover_the_range_without_gaps() -> None:
    filters = mel_filterbank(MelConfig(16000, 512, 160, 40))
    assert filters.shape == (40, 257)
    assert (filters.sum(axis=1) > 0).all()  # no empty band at this resolution
    assert (filters >= 0).all()
