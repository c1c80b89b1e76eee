"""`lm_mean.npy` / `lm_std.npy`: the landmark normalisation statistics, computed from the training split only.

Both are (68, 2) float32: the mean and the population standard deviation (ddof 0) of each normalised landmark
coordinate over every frame of every training sample. The seed recomputed them by hand after merging datasets;
here every dataset build computes them from its own training split, so they can never be stale or leak
validation data. A coordinate whose spread is below `STD_FLOOR` gets `STD_FLOOR`, so dividing by the std never
blows up (1e-3 inter-ocular distances is ~0.2 px on a typical face: below what a landmark detector resolves).
"""

from __future__ import annotations

import numpy as np

STD_FLOOR = 1e-3


class LandmarkStats:
    """Mean and variance accumulated sample by sample (Chan et al.'s pairwise update, in float64), so a large
    dataset's statistics need no more memory than one sample."""

    def __init__(self) -> None:
        self.count = 0
        self._mean = np.zeros((68, 2), dtype=np.float64)
        self._m2 = np.zeros((68, 2), dtype=np.float64)

    def add(self, landmarks: np.ndarray) -> None:
        """Add a sample's (W, 68, 2) landmarks."""
        values = np.asarray(landmarks, dtype=np.float64).reshape(-1, 68, 2)
        count = values.shape[0]
        if not count:
            return
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        total = self.count + count
        delta = mean - self._mean
        self._mean = self._mean + delta * (count / total)
        self._m2 = self._m2 + m2 + delta * delta * (self.count * count / total)
        self.count = total

    def mean(self) -> np.ndarray:
        if not self.count:
            raise ValueError("no landmarks were added")
        return self._mean.astype(np.float32)

    def std(self) -> np.ndarray:
        if not self.count:
            raise ValueError("no landmarks were added")
        return np.maximum(np.sqrt(self._m2 / self.count), STD_FLOOR).astype(np.float32)
