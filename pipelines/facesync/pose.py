"""Pose normalisation: the twin's 68 pixel landmarks per frame -> a face-centred shape in inter-ocular units.

    centre[t]  the mean of the rigid points of frame t (nose 27-35 and both eyes 36-47, iBUG numbering, 0-based):
               they move with the head but not with speech, so the mouth and jaw move relative to a steady origin
    scale      ONE number per twin: the median distance between the outer eye corners (points 36 and 45) over the
               usable frames, in pixels
    landmarks  (points - centre[t]) / scale

Why one scale per twin and not one per frame: the projected inter-ocular distance shrinks when the head turns,
so dividing each frame by its own would turn a head turn into a wider face, and the jitter of two eye corners
would shake the whole shape. A per-twin scale removes what differs between twins (face size, camera distance)
and keeps every within-twin movement. Rotation is not removed: head roll is part of the pose facesync learns.
The pixel points are recovered as `landmarks * scale + centre`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIGID_POINTS = np.arange(27, 48)
OUTER_EYE_CORNERS = (36, 45)


@dataclass(frozen=True, eq=False)
class Pose:
    landmarks: np.ndarray  # (T, 68, 2) float32, NaN where the frame has no face
    centre: np.ndarray  # (T, 2) float32, pixels
    scale: float  # pixels per unit; NaN when no frame is usable


def inter_ocular_px(points: np.ndarray) -> np.ndarray:
    """(T,) distance between the outer eye corners of each frame, pixels (NaN where there is no face)."""
    left, right = OUTER_EYE_CORNERS
    distance: np.ndarray = np.linalg.norm(points[:, right].astype(np.float64) - points[:, left], axis=1)
    return distance


def normalise_pose(points_px: np.ndarray, usable: np.ndarray) -> Pose:
    """Normalise (T, 68, 2) pixel points; the scale is measured on the frames `usable` marks (T,) bool."""
    points = np.asarray(points_px, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"expected (T, 68, 2) landmarks, not shape {points.shape}")
    centre = points[:, RIGID_POINTS].mean(axis=1)
    distances = inter_ocular_px(points)
    measured = np.asarray(usable, dtype=bool) & np.isfinite(distances) & (distances > 0)
    scale = float(np.median(distances[measured])) if measured.any() else float("nan")
    landmarks = (points - centre[:, None, :]) / scale
    return Pose(landmarks=landmarks.astype(np.float32), centre=centre.astype(np.float32), scale=scale)
