"""The bi-layer face crop: an axis-aligned square around the landmarks, as the bi-layer authors cut their frames.

The rule (the one the Fast Bi-layer code applies to every frame it feeds the model, in training data and in its own
inference preprocessing), for the 68 landmarks of one frame:

    centre = the centre of the landmarks' bounding box, rounded to a pixel, then raised by extent // 6
    extent = the larger side of that bounding box, whole pixels
    crop   = the square of side 2 * extent around the centre, resized to `size` x `size` (bicubic)

Why this rule and not th's similarity alignment (`th.face.align`): the published bi-layer weights, which the seed
team fine-tunes, were trained on crops made this way (not rotated, the face's box filling half the width, the top
of the head and the neck in view); a crop that differs in scale or rotation would be data the model has not seen.
Parts of the square outside the frame are black, as in the original (PIL's crop pads with zeros).

Coordinates follow OpenCV and `th.face.types`: (0, 0) is the centre of the top-left pixel, in the frame and in the
crop. Every landmark lies inside its crop by construction (the square is twice the landmarks' extent, shifted up by
a sixth of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# A face whose landmarks span fewer pixels than this gives no meaningful crop (a degenerate detection).
MIN_EXTENT_PX = 8
CROP_RULE = "bilayer: square of 2x the landmarks' extent, centred on their box, raised by extent/6; bicubic"


@dataclass(frozen=True)
class CropBox:
    """A square region of a frame: `x0`, `y0` the frame pixel of its top-left corner, `side` its width in pixels.
    It may reach beyond the frame."""

    x0: int
    y0: int
    side: int

    def as_array(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1 (exclusive) in frame pixels."""
        return np.array([self.x0, self.y0, self.x0 + self.side, self.y0 + self.side], dtype=np.int32)

    def outside_fraction(self, width: int, height: int) -> float:
        """Share of the square's area that lies outside a `width` x `height` frame (0: wholly inside)."""
        inside_x = max(0, min(self.x0 + self.side, width) - max(self.x0, 0))
        inside_y = max(0, min(self.y0 + self.side, height) - max(self.y0, 0))
        return 1.0 - inside_x * inside_y / float(self.side * self.side)


def face_box(points: np.ndarray) -> CropBox | None:
    """The crop of (68, 2) frame-pixel landmarks by the rule above; None when they are not finite or too small."""
    points = np.asarray(points, dtype=np.float64)
    if not np.isfinite(points).all():
        return None
    low, high = points.min(axis=0), points.max(axis=0)
    extent = int(max(high - low))
    if extent < MIN_EXTENT_PX:
        return None
    centre_x, centre_y = (int(v) for v in np.round((low + high) / 2))
    centre_y -= extent // 6
    return CropBox(x0=centre_x - extent, y0=centre_y - extent, side=2 * extent)


def crop_face(frame: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """(size, size, 3) uint8: `box` of the (H, W, 3) uint8 RGB `frame`, black beyond the frame, resized bicubically
    (PIL's resize filters over the whole footprint when shrinking, so fine detail does not alias)."""
    region = Image.fromarray(np.ascontiguousarray(frame)).crop((box.x0, box.y0, box.x0 + box.side, box.y0 + box.side))
    resized = region.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


def inside_frame(box: CropBox, width: int, height: int, size: int) -> np.ndarray:
    """(size, size) bool: crop pixels whose centre falls inside the `width` x `height` frame (False: black padding)."""
    centres = (np.arange(size, dtype=np.float64) + 0.5) * box.side / size - 0.5  # crop px -> frame px offsets
    columns = (box.x0 + centres >= -0.5) & (box.x0 + centres < width - 0.5)
    rows = (box.y0 + centres >= -0.5) & (box.y0 + centres < height - 0.5)
    return np.asarray(rows[:, None] & columns[None, :])


def points_in_crop(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """(68, 2) float32: frame-pixel `points` in the pixels of the `size` x `size` crop of `box`.

    A point at x (pixel-centre coordinates) lies x + 0.5 - x0 frame pixels right of the crop's left edge, that is
    (x + 0.5 - x0) * size / side crop pixels; its crop pixel-centre coordinate is half a pixel less."""
    scale = size / float(box.side)
    origin = np.array([box.x0, box.y0], dtype=np.float64)
    mapped = (np.asarray(points, dtype=np.float64) + 0.5 - origin) * scale - 0.5
    return mapped.astype(np.float32)
