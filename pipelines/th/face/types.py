"""The values passed between the face modules: one detected face, and the faces of one frame.

Coordinates are pixels of the frame they were found in, x to the right and y down, (0, 0) the centre of the
top-left pixel (OpenCV's convention). Points are always the 68 iBUG landmarks in iBUG
order (see `ibug.py`), whatever the backend found natively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_LANDMARKS = 68


@dataclass(frozen=True)
class FaceDetection:
    """One face in one frame.

    points      (68, 2) float32 pixel coordinates, iBUG order
    confidence  0..1, the backend's belief that this is a face with well-placed landmarks
    box         (x0, y0, x1, y1) pixel box around the face (the landmarks' box when the backend gives none)
    """

    points: np.ndarray
    confidence: float
    box: tuple[float, float, float, float]

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def height(self) -> float:
        return max(0.0, self.box[3] - self.box[1])


FrameFaces = list[FaceDetection]
"""Every face a backend found in one frame, in no particular order (empty: no face)."""


def box_of(points: np.ndarray, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The axis-aligned box of `points` (N, 2), grown by `margin` times its size on every side."""
    x0, y0 = (float(v) for v in np.min(points, axis=0))
    x1, y1 = (float(v) for v in np.max(points, axis=0))
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)
