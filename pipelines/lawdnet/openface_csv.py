"""The landmark CSV in OpenFace's FeatureExtraction layout, as DINet's and LawDNet's loaders read it.

Columns: frame, face_id, timestamp, confidence, success, x_0..x_67, y_0..y_67 (141 columns). Those loaders read
the points by position (x from column 5, y from column 73) and reject a file whose `frame` is not 1, 2, 3...; so
`frame` is 1-based as in OpenFace, and `face_id` (always 0: one person) is kept although nothing reads it.
`timestamp` is the frame's start in seconds (OpenFace's convention). `success` is 1 for a usable frame and 0
otherwise; a frame without a face has confidence 0 and all points 0, as OpenFace writes it. Headers have no
spaces after the commas (OpenFace writes ", x_0"): loaders that go by position are unaffected.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.base import BadInput

POINTS = 68
HEADER = (
    ["frame", "face_id", "timestamp", "confidence", "success"]
    + [f"x_{i}" for i in range(POINTS)]
    + [f"y_{i}" for i in range(POINTS)]
)


@dataclass(frozen=True, eq=False)
class LandmarkRows:
    """What the CSV holds: (N,) timestamps, confidences and success flags, (N,68,2) points (0 where no face)."""

    timestamp: np.ndarray
    confidence: np.ndarray
    success: np.ndarray
    points: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.points.shape[0])


def write_landmarks_csv(path: Path, rows: LandmarkRows) -> None:
    """Write the CSV with fixed number formats (3 decimals): the same values always give the same bytes."""
    points = np.where(np.isfinite(rows.points), rows.points, 0.0)
    buffer = io.StringIO()
    buffer.write(",".join(HEADER) + "\n")
    for index in range(rows.frames):
        values = [
            str(index + 1),
            "0",
            f"{rows.timestamp[index]:.3f}",
            f"{rows.confidence[index]:.3f}",
            "1" if rows.success[index] else "0",
        ]
        values += [f"{value:.3f}" for value in points[index, :, 0]]
        values += [f"{value:.3f}" for value in points[index, :, 1]]
        buffer.write(",".join(values) + "\n")
    path.write_text(buffer.getvalue())


def read_landmarks_csv(path: Path, name: str) -> LandmarkRows:
    """Read a CSV written by `write_landmarks_csv`; BadInput naming `name` when it is not one."""
    fix = "run the twin's lawdnet preprocess again"
    try:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
            data = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise BadInput(f"{name} could not be read as numbers under OpenFace's header ({exc}): {fix}") from exc
    if header != HEADER:
        raise BadInput(f"{name} does not start with OpenFace's landmark header: {fix}")
    if data.size == 0:
        data = np.zeros((0, len(HEADER)))
    if data.shape[1] != len(HEADER):
        raise BadInput(f"{name} has rows of {data.shape[1]} numbers, not {len(HEADER)}: {fix}")
    if not np.array_equal(data[:, 0], np.arange(1, data.shape[0] + 1)):
        raise BadInput(f"{name} does not number its frames 1, 2, 3...: {fix}")
    points = np.stack([data[:, 5 : 5 + POINTS], data[:, 5 + POINTS :]], axis=2)
    return LandmarkRows(timestamp=data[:, 2], confidence=data[:, 3], success=data[:, 4] == 1, points=points)
