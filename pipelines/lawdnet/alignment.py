"""The 416 high x 320 wide face crop LawDNet trains on, framed by th's alignment rule.

Each frame's crop is a window of th's aligned square crop (`pipelines/th/face/align.py`: a similarity from the eye
centres and mouth corners, smoothed over time, frames without a face take their nearest face frame's): th's crop
rendered TH_CROP_PX pixels wide, of which the lawdnet crop keeps columns WINDOW_LEFT to WINDOW_LEFT + 320 and rows
WINDOW_TOP to WINDOW_TOP + 416. The size and the mouth region (MOUTH_BOX) are LawDNet's; the framing is ours.

Why these constants (face units: E = the distance between the eye centres; th's crop is about 5 E wide for a frontal
face, its centre 0.1 of the eye-to-mouth distance, about 0.11 E, below the mid-eyes):
- TH_CROP_PX = 650 makes E about 130 px. A face is about 2.1 E from jaw to jaw, so a frontal face spans ~275 of
  the 320 columns, ~20 px of margin each side, and its mouth (0.8-1.0 E wide) sits 60+ px inside the mouth region's
  sides. Brows (0.4-0.6 E above the eyes) to an open chin (1.7-1.9 E below them) take ~320 of the 416 rows.
- WINDOW_LEFT = 165 centres the window on th's crop, so the face (its mid-eyes and mid-mouth) is centred.
- WINDOW_TOP = 205 puts th's crop centre on row 119.5, the eye centres near row 105 (0.8 E from the top: the brows
  keep a margin of at least 0.2 E), so that the mouth region (rows 128-384) starts ~0.18 E below the eye centres,
  under the lower lids: LawDNet regenerates no eye. The lips (0.8-1.5 E below the eyes) then lie in rows ~210-300,
  near the middle of the mouth region, and the chin (1.7-1.9 E) in rows ~325-350, inside it: the jaw moves with
  speech, so it belongs to what the network regenerates. The mouth region ends ~2.15 E below the eyes: the
  picture must reach that far below the eyes for the frame to be usable (face_stage.py).
The crop's x axis is th's: the eye line averaged with the face's vertical axis, so the eyes are level to within a
few degrees (half the angle between the two).

Pixel coordinates follow OpenCV: (0, 0) is the centre of the top-left pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.lawdnet.outputs import CROP_HEIGHT, CROP_WIDTH
from pipelines.th.face.align import estimate_transforms, transform_for_size

# th's aligned crop is rendered this wide (and high); the lawdnet crop is a window of it (module docstring).
TH_CROP_PX = 650
WINDOW_LEFT = (TH_CROP_PX - CROP_WIDTH) // 2
WINDOW_TOP = 205
CROP_RULE = f"th-align window: th crop at {TH_CROP_PX} px, columns from {WINDOW_LEFT}, rows from {WINDOW_TOP}"
# The region LawDNet's network masks and regenerates (mouth_region_size 256: rows 128-384, columns 32-288): a frame
# whose mouth region leaves the frame would teach it black mouths, so such frames are not usable.
MOUTH_BOX = (CROP_WIDTH // 10, CROP_HEIGHT * 4 // 13, CROP_WIDTH * 9 // 10, CROP_HEIGHT * 12 // 13)


def window_transforms(unit: np.ndarray) -> np.ndarray:
    """th's unit-crop transform(s) (2,3) or (N,2,3) as frame px -> lawdnet crop px (same shape)."""
    pixel = transform_for_size(unit, TH_CROP_PX)
    pixel[..., 0, 2] -= WINDOW_LEFT
    pixel[..., 1, 2] -= WINDOW_TOP
    return pixel


def crop_transforms(landmarks: np.ndarray, found: np.ndarray, fps: float, *, source: str = "the video") -> np.ndarray:
    """(N,2,3) frame px -> crop px transforms from (N,68,2) landmarks at `fps`, by th's rule smoothed over time;
    frames not `found` take the nearest face frame's. BadInput (naming `source`) when no frame has a face."""
    unit = estimate_transforms(landmarks, found, fps, smooth=True, source=source)
    return window_transforms(unit)


def apply_transforms(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,K,2) points mapped by (N,2,3) transforms (NaN points stay NaN)."""
    mapped: np.ndarray = np.einsum("nij,nkj->nki", transforms[:, :, :2], points) + transforms[:, None, :, 2]
    return mapped


def warp_crop(frame: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """The CROP_HEIGHT x CROP_WIDTH crop of `frame` (H,W,3) uint8 under `transform` (2,3): bilinear, black outside
    the frame (as LawDNet's grid_sample pads). A face shrunk by more than half is first halved with a Gaussian
    pyramid so fine detail does not alias."""
    matrix = np.array(transform, dtype=np.float64)
    source = frame
    while _scale(matrix) < 0.5 and min(source.shape[:2]) >= 4:
        source = cv2.pyrDown(source)  # pixel i of the result is centred on pixel 2i of its source
        matrix[:, :2] *= 2
    return cv2.warpAffine(
        source,
        matrix,
        (CROP_WIDTH, CROP_HEIGHT),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def outside_share(
    transforms: np.ndarray, frame_size: tuple[int, int], box: tuple[int, int, int, int] | None = None, step: int = 8
) -> np.ndarray:
    """(N,) share of each crop's `box` (x0, y0, x1, y1 in crop px; default the whole crop) that lies outside the
    frame (width, height), measured on a grid every `step` px."""
    width, height = frame_size
    x0, y0, x1, y1 = box if box is not None else (0, 0, CROP_WIDTH, CROP_HEIGHT)
    ys, xs = np.mgrid[y0 + step // 2 : y1 : step, x0 + step // 2 : x1 : step]
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    linear = np.linalg.inv(transforms[:, :, :2])
    back = np.einsum("nij,nkj->nki", linear, grid[None, :, :] - transforms[:, None, :, 2])
    x, y = back[..., 0], back[..., 1]
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    return np.asarray(1.0 - inside.mean(axis=1))


def _scale(matrix: np.ndarray) -> float:
    """How much a similarity enlarges lengths (crop px per frame px)."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
