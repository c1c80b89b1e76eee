"""The framing checks every lawdnet test face must pass (what `pipelines/lawdnet/alignment.py` promises)."""

from __future__ import annotations

import numpy as np

from pipelines.lawdnet.alignment import MOUTH_BOX
from pipelines.lawdnet.outputs import CROP_HEIGHT, CROP_WIDTH

# "Well inside" the mouth region: an eighth of its 256 px side clear of each of its edges.
MOUTH_MARGIN_PX = 32
MAX_EYE_TILT_DEG = 4.0
MAX_OFF_CENTRE_PX = 0.1 * CROP_WIDTH
BROW_CHIN_MARGIN_PX = 16


def assert_framed(crop_points: np.ndarray, usable: np.ndarray) -> None:
    """For the `usable` frames of (N,68,2) crop landmarks: the mouth (corners 48/54, outer lip middles 51/57) well
    inside MOUTH_BOX, the eyes above it and level, the face centred horizontally, brows to chin inside the crop."""
    points = np.asarray(crop_points, dtype=np.float64)[np.asarray(usable, dtype=bool)]
    assert len(points) > 0, "no usable frame to check"
    x0, y0, x1, y1 = MOUTH_BOX
    mouth = points[:, [48, 54, 51, 57]]
    assert mouth[..., 0].min() > x0 + MOUTH_MARGIN_PX and mouth[..., 0].max() < x1 - MOUTH_MARGIN_PX
    assert mouth[..., 1].min() > y0 + MOUTH_MARGIN_PX and mouth[..., 1].max() < y1 - MOUTH_MARGIN_PX
    assert points[:, 36:48, 1].max() < y0, "an eye reaches into the mouth region"

    right_eye, left_eye = points[:, 36:42].mean(axis=1), points[:, 42:48].mean(axis=1)
    tilt = np.degrees(np.arctan2(left_eye[:, 1] - right_eye[:, 1], left_eye[:, 0] - right_eye[:, 0]))
    assert np.abs(tilt).max() < MAX_EYE_TILT_DEG

    middle = (CROP_WIDTH - 1) / 2
    eyes_and_mouth = (right_eye[:, 0] + left_eye[:, 0] + points[:, 48, 0] + points[:, 54, 0]) / 4
    extent = (points[..., 0].min(axis=1) + points[..., 0].max(axis=1)) / 2
    assert np.abs(eyes_and_mouth - middle).max() < MAX_OFF_CENTRE_PX
    assert np.abs(extent - middle).max() < MAX_OFF_CENTRE_PX

    assert points[:, 17:27, 1].min() > BROW_CHIN_MARGIN_PX
    assert points[:, 8, 1].max() < CROP_HEIGHT - BROW_CHIN_MARGIN_PX
