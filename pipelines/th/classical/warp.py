"""The classical engine's warper: move the twin's own face crop to the driving landmarks, piecewise affine.

The crop is cut into triangles over the 68 landmarks, a ring of points around the face and points on the crop's
border; each triangle of the output samples the matching triangle of the source crop (a backward map through
barycentric coordinates, then one `cv2.remap`). The triangulation is FIXED: Delaunay on a mean face with a slightly
open mouth (so the inner mouth has its own triangles), never recomputed per frame, which would make the face flicker.
The ring and the border never move, so only the face inside its outline can change, and only the triangles whose
corners moved are remapped: the rest of the crop is copied bit for bit.

Two things a bare landmark warp gets wrong, and this one adds:
  - the jaw: a mouth opens mostly by dropping the jaw, so the chin and lower jaw line follow the lower lip's move
    (relative to the chin's own) by JAW_FOLLOW, fading towards the ears; otherwise the chin is squashed;
  - the inside of the mouth: when the driving inner lips (60-67) part further than the source's, the source has
    nothing to show there (its lips touch), so the inner-mouth polygon is painted: a dark red-brown cavity (as
    bright as the source's lips allow), a soft band of upper teeth under the upper lip (its height grows with the
    opening, its brightness from the skin) and a hint of tongue at the bottom of a wide mouth, blended with
    anti-aliased, feathered edges, the more opaque the less of the gap the source itself had (a source that is
    open already shows its own teeth, stretched).
When the driving mouth is more closed than the source's, the inner triangles shrink or collapse and the lips meet;
the source's inner lip line is first moved a little into the lips (`trim_closing`), or a line of teeth would stay.
Inner-lip gaps are compared after the head's scale change, so a head coming closer is no mouth opening.

The triangulation comes from scipy's Delaunay on fixed input, so it is the same on every call; its one property
that matters (the inner mouth is triangulated by the inner-lip points alone) is checked by the tests.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from scipy.spatial import Delaunay

from pipelines.th.classical.mouth_shape import apply_similarities, inner_gap, similarities
from pipelines.th.render import WarpBatch

# The mean of MediaPipe's 68 iBUG points over talking_512.mp4, skimage's astronaut and matplotlib's grace_hopper
# (and their mirror images) in the unit crop of `face.align`: where a face sits in every aligned crop.
MEAN_FACE = np.array(
    [[0.29, 0.495], [0.294, 0.549], [0.303, 0.602], [0.313, 0.656], [0.331, 0.709], [0.362, 0.751], [0.402, 0.788],
     [0.446, 0.814], [0.5, 0.824], [0.554, 0.814], [0.598, 0.788], [0.638, 0.751], [0.669, 0.709], [0.687, 0.656],
     [0.697, 0.602], [0.706, 0.549], [0.71, 0.495], [0.323, 0.437], [0.341, 0.418], [0.382, 0.409], [0.42, 0.412],
     [0.455, 0.427], [0.545, 0.427], [0.58, 0.412], [0.618, 0.409], [0.659, 0.418], [0.677, 0.437], [0.5, 0.474],
     [0.5, 0.51], [0.5, 0.551], [0.5, 0.589], [0.456, 0.61], [0.477, 0.617], [0.5, 0.624], [0.523, 0.617],
     [0.544, 0.61], [0.363, 0.482], [0.386, 0.465], [0.415, 0.466], [0.44, 0.486], [0.412, 0.491], [0.384, 0.491],
     [0.56, 0.486], [0.585, 0.466], [0.614, 0.465], [0.637, 0.482], [0.616, 0.491], [0.588, 0.491], [0.414, 0.677],
     [0.444, 0.665], [0.476, 0.661], [0.5, 0.663], [0.524, 0.661], [0.556, 0.665], [0.586, 0.677], [0.556, 0.71],
     [0.525, 0.724], [0.5, 0.727], [0.475, 0.724], [0.444, 0.71], [0.425, 0.679], [0.476, 0.677], [0.5, 0.679],
     [0.524, 0.677], [0.575, 0.679], [0.522, 0.695], [0.5, 0.697], [0.478, 0.695]],
    dtype=np.float64,
)  # fmt: skip
TEMPLATE_OPENING = 0.03  # the lower lip of MEAN_FACE is lowered this much (unit crop) before triangulating

STABLE = (27, 28, 29, 30, 36, 39, 42, 45)
RING_FROM = (0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 19, 21, 22, 24, 26)  # jaw and brows, pushed out from the face
RING_SCALE = 1.4  # ring point = centre + RING_SCALE x (landmark - centre), centre = mean of STABLE
BORDER_STEPS = 4  # points per crop edge (corners included once)

JAW_FOLLOW = 0.5
JAW_WEIGHTS = {3: 0.1, 4: 0.25, 5: 0.45, 6: 0.7, 7: 0.9, 8: 1.0, 9: 0.9, 10: 0.7, 11: 0.45, 12: 0.25, 13: 0.1}
LOWER_LIP_MIDDLE = (56, 57, 58)
CHIN = 8

UPPER_INNER = (60, 61, 62, 63, 64)
LOWER_INNER = (64, 65, 66, 67, 60)
OUTER_LIPS = tuple(range(48, 60))
NOSE_AND_CHEEKS = (28, 29, 30, 40, 47)  # nose bridge to tip, lower eyelids: a patch of lit skin
INNER_LIPS = tuple(range(60, 68))
CAVITY_RGB = np.array([52.0, 18.0, 20.0])  # a dark red-brown, for lips of average brightness (LIP_LUMA)
TONGUE_RGB = np.array([105.0, 40.0, 44.0])  # the tongue stays darker than the lips: it is in the shade
LIP_LUMA = 150.0
DEFAULT_LIPS = np.array([150.0, 80.0, 80.0])  # when the source's lips cover no pixel
TEETH_RGB = np.array([1.0, 0.97, 0.92])
TEETH_OVER_SKIN = 1.1  # teeth are a little brighter than the lit skin around the nose...
TEETH_LUMA = (170.0, 240.0)  # ... within these bounds
TEETH_OF_GAP = 0.35  # the teeth band shows at most this share of the gap...
TEETH_OF_WIDTH = 0.2  # ... and at most this share of the inner mouth's width (incisors ~10 mm of a 50 mm mouth)
CLOSING_TRIM = 0.5  # closing an open source mouth: its inner lip line is taken this share of its gap further out
CLOSING_TRIM_PX = 3.0  # ... at most this many pixels of a 256 crop
CLOSING_TRIM_OF_LIP = 0.3  # ... and at most this share of the lip's own thickness (a thin lip would smear)
CLOSING_CORNER = 0.5  # ... and its inner corners this share of the way to the outer ones (corner shadows)
LUMA = np.array([0.299, 0.587, 0.114])
GAP_TOLERANCE = 0.02  # inner-lip gaps closer than this share count as equal (landmark round-off)
_MOVED_PX = 1e-3
_SPLINE_STEPS = 6


def _border(size: int) -> np.ndarray:
    """Points on the crop's outer edge (pixel centres run 0..size-1; the edge is half a pixel further out)."""
    edge = np.linspace(-0.5, size - 0.5, BORDER_STEPS + 1)
    low, high = np.full(BORDER_STEPS, -0.5), np.full(BORDER_STEPS, size - 0.5)
    return np.concatenate(
        [
            np.stack([edge[:-1], low], axis=1),
            np.stack([high, edge[:-1]], axis=1),
            np.stack([edge[1:][::-1], high], axis=1),
            np.stack([low, edge[1:][::-1]], axis=1),
        ]
    )


def ring_points(points: np.ndarray, size: int) -> np.ndarray:
    """The fixed points around a face (68,2), kept a few pixels inside the crop."""
    centre = points[list(STABLE)].mean(axis=0)
    ring = centre + RING_SCALE * (points[list(RING_FROM)] - centre)
    margin = 0.02 * size
    return np.asarray(np.clip(ring, margin, size - 1 - margin))


@functools.lru_cache(maxsize=1)
def triangles() -> np.ndarray:
    """(K,3) vertex indices into [68 landmarks, ring, border]: Delaunay on MEAN_FACE with its mouth opened."""
    size = 1000
    face = MEAN_FACE * size - 0.5
    face[[55, 56, 57, 58, 59, 65, 66, 67], 1] += TEMPLATE_OPENING * size
    vertices = np.concatenate([face, ring_points(face, size), _border(size)])
    simplices = np.asarray(Delaunay(vertices).simplices, dtype=np.int64)
    simplices.setflags(write=False)
    return simplices


def jaw_following(source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """`driving` (68,2) with the jaw line moved by JAW_FOLLOW of the lower lip's own move relative to the chin's.

    "Own" moves are what is left after the head's motion (the similarity taking the source's STABLE points to the
    driving ones), so a turning or nodding head moves the jaw with it and nothing more.
    """
    scale, shift = similarities(source[None, list(STABLE)], driving[list(STABLE)])
    residual = driving - apply_similarities(scale, shift, source[None])[0]
    if not np.isfinite(residual).all():
        return np.array(driving, dtype=np.float64, copy=True)
    relative = residual[list(LOWER_LIP_MIDDLE)].mean(axis=0) - residual[CHIN]
    moved = np.array(driving, dtype=np.float64, copy=True)
    for index, weight in JAW_WEIGHTS.items():
        moved[index] += JAW_FOLLOW * weight * relative
    return moved


def head_scale(source: np.ndarray, driving: np.ndarray) -> float:
    """How much the head grew from the source to the driving landmarks (1 when unknown): gaps are compared after it,
    so that a head coming closer does not count as a mouth opening."""
    scale, _ = similarities(source[None, list(STABLE)], driving[list(STABLE)])
    value = float(np.abs(scale[0, 0]))
    return value if np.isfinite(value) and value > 0 else 1.0


def trim_closing(source: np.ndarray, driving: np.ndarray, size: int) -> np.ndarray:
    """The source landmarks to sample from: when the driving mouth is more closed than the source's, the source's
    inner lip points are moved apart a little (up to CLOSING_TRIM of its gap) and its inner corners towards the
    outer ones, so that the lips, pressed together, do not bring a line of teeth or the dark corners of the open
    mouth along (landmarks sit a pixel or so inside the visible lip edge)."""
    gap_source, gap_driving = float(inner_gap(source)), float(inner_gap(driving)) / head_scale(source, driving)
    if gap_driving >= gap_source * (1 - GAP_TOLERANCE) or gap_source <= 0:
        return source
    along = source[64] - source[60]
    along = along / max(float(np.hypot(*along)), 1e-6)
    down = np.array([-along[1], along[0]])
    closing = min(1.0, 2.0 * (gap_source - gap_driving) / gap_source)
    trim = closing * min(CLOSING_TRIM * gap_source, CLOSING_TRIM_PX * size / 256)
    upper_lip = float((source[62] - source[51]) @ down)
    lower_lip = float((source[57] - source[66]) @ down)
    trimmed = np.array(source, dtype=np.float64, copy=True)
    trimmed[[61, 62, 63]] -= min(trim, CLOSING_TRIM_OF_LIP * max(upper_lip, 0.0)) * down
    trimmed[[65, 66, 67]] += min(trim, CLOSING_TRIM_OF_LIP * max(lower_lip, 0.0)) * down
    trimmed[60] += CLOSING_CORNER * closing * (source[48] - source[60])
    trimmed[64] += CLOSING_CORNER * closing * (source[54] - source[64])
    return trimmed


class PiecewiseAffineWarper:
    """The classical engine's `Warper` (see `pipelines.th.render`): piecewise-affine warp plus inner-mouth fill."""

    def __init__(self, size: int = 256) -> None:
        if size < 16:
            raise ValueError(f"crop size must be at least 16 px, got {size}")
        self.size = size
        self._border = _border(size)
        self._triangles = triangles()

    def warp(self, batch: WarpBatch) -> np.ndarray:
        crops = np.asarray(batch.crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.size, self.size, 3) or crops.dtype != np.uint8:
            raise ValueError(f"expected crops (B,{self.size},{self.size},3) uint8, got {crops.dtype} {crops.shape}")
        out = np.array(crops, copy=True)
        for index in range(len(crops)):
            source = np.asarray(batch.source_points[index], dtype=np.float64)
            driving = np.asarray(batch.driving_points[index], dtype=np.float64)
            if not (np.isfinite(source).all() and np.isfinite(driving).all()):
                continue  # no face to move: the twin's frame as it is
            self.warp_one(crops[index], source, driving, out[index])
        return out

    def warp_one(self, crop: np.ndarray, source: np.ndarray, driving: np.ndarray, out: np.ndarray) -> None:
        """Write into `out` (S,S,3) the warp of `crop` from `source` to `driving` landmarks (68,2, crop px)."""
        driving = jaw_following(source, driving)
        fixed = np.concatenate([ring_points(source, self.size), self._border])
        sampled = trim_closing(source, driving, self.size)
        src = np.concatenate([sampled, fixed])[self._triangles]  # (K,3,2)
        dst = np.concatenate([driving, fixed])[self._triangles]
        moved = np.abs(src - dst).max(axis=(1, 2)) > _MOVED_PX
        if not moved.any():
            return
        src, dst = src[moved], dst[moved]
        corners = np.concatenate([dst[:, :, :1], dst[:, :, 1:], np.ones(dst.shape[:2] + (1,))], axis=2)
        determinant = np.linalg.det(corners)
        solid = np.abs(determinant) > 1e-6  # a collapsed output triangle covers no pixel
        if not solid.any():
            return
        src, dst, corners = src[solid], dst[solid], corners[solid]
        affine = np.linalg.solve(corners, src)  # (K,3,2): [x, y, 1] @ affine = source pixel
        x0, y0 = np.floor(dst.reshape(-1, 2).min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(dst.reshape(-1, 2).max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.size), min(y1, self.size)
        if x0 >= x1 or y0 >= y1:
            return
        labels = np.full((y1 - y0, x1 - x0), len(affine), dtype=np.int32)  # last label: identity
        offset = np.array([x0, y0], dtype=np.float64)
        for label, triangle in enumerate(dst):
            vertices = np.rint((triangle - offset) * 16).astype(np.int32)
            cv2.fillConvexPoly(labels, vertices, label, lineType=cv2.LINE_8, shift=4)
        table = np.concatenate([affine, np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])]).astype(np.float32)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        chosen = table[labels]  # (h,w,3,2)
        map_x = xs * chosen[..., 0, 0] + ys * chosen[..., 1, 0] + chosen[..., 2, 0]
        map_y = xs * chosen[..., 0, 1] + ys * chosen[..., 1, 1] + chosen[..., 2, 1]
        identity = labels == len(affine)
        map_x[identity], map_y[identity] = xs[identity], ys[identity]
        out[y0:y1, x0:x1] = cv2.remap(crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fill_mouth(out, crop, source, driving)


def fill_mouth(out: np.ndarray, crop: np.ndarray, source: np.ndarray, driving: np.ndarray) -> None:
    """Paint the inside of the driving mouth into `out` where the source mouth was closed (module docstring)."""
    gap_source, gap_driving = float(inner_gap(source)) * head_scale(source, driving), float(inner_gap(driving))
    if gap_driving < 0.5 or gap_driving <= gap_source * (1 + GAP_TOLERANCE):
        return
    opacity = min(1.0, 2.0 * (1.0 - gap_source / gap_driving))
    size = out.shape[0]
    upper = _spline(driving[list(UPPER_INNER)])
    lower = _spline(driving[list(LOWER_INNER)])
    polygon = np.concatenate([upper, lower[1:-1]])
    feather = 0.6 * size / 256
    margin = int(np.ceil(3 * feather)) + 2
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + margin + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
    if x0 >= x1 or y0 >= y1:
        return
    offset = np.array([x0, y0], dtype=np.float64)
    shape = (y1 - y0, x1 - x0)
    mouth = _soft_polygon(polygon - offset, shape, feather)

    along = driving[64] - driving[60]
    inner_width = max(float(np.hypot(*along)), 1.0)
    along = along / inner_width
    down = np.array([-along[1], along[0]])
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    centre = (driving[60] + driving[64]) / 2
    across = ((xs - centre[0]) * along[0] + (ys - centre[1]) * along[1]) / (inner_width / 2)
    top = float(np.min((upper - centre) @ down))
    depth = np.clip(((xs - centre[0]) * down[0] + (ys - centre[1]) * down[1] - top) / max(gap_driving, 1.0), 0, 1)

    lips, skin = _colours(crop, source)
    brightness = float(np.clip(lips @ LUMA / LIP_LUMA, 0.6, 1.3))
    cavity, tongue = brightness * CAVITY_RGB, brightness * TONGUE_RGB
    tongue_weight = 0.7 * _smoothstep(0.55, 1.0, depth) * min(1.0, gap_driving / (0.35 * inner_width))
    layer = cavity + (tongue - cavity) * tongue_weight[..., None]

    teeth_height = min(TEETH_OF_GAP * gap_driving, TEETH_OF_WIDTH * inner_width)
    # the incisal edge: a smooth arc from corner to corner, teeth_height under the middle of the upper lip
    steps = np.linspace(0.0, 1.0, 4 * _SPLINE_STEPS + 1)[:, None]
    lip_middle = float((driving[62] - centre) @ down)
    edge = driving[60] + steps * (driving[64] - driving[60])
    edge = edge + down * (lip_middle + teeth_height) * np.sin(np.pi * steps) ** 0.7
    band = np.concatenate([upper - 2 * down, edge[::-1]])
    teeth = _soft_polygon(band - offset, shape, 1.3 * feather) * mouth
    shade = 0.6 + 0.4 * np.sqrt(np.clip(1 - across**2, 0, 1))
    teeth_colour = np.clip(TEETH_OVER_SKIN * skin, TEETH_LUMA[0], TEETH_LUMA[1]) * TEETH_RGB
    layer = layer + (shade[..., None] * teeth_colour - layer) * teeth[..., None]

    alpha = (opacity * mouth)[..., None]
    region = out[y0:y1, x0:x1].astype(np.float64)
    out[y0:y1, x0:x1] = np.clip(np.rint(region + alpha * (layer - region)), 0, 255).astype(np.uint8)


def _colours(crop: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, float]:
    """The source crop's lip colour (median RGB between the outer and inner lips) and lit-skin brightness (80th
    percentile luma around the nose, above the nostrils' shadow)."""
    size = crop.shape[0]
    mask = np.zeros(crop.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.rint(source[list(OUTER_LIPS)] * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    cv2.fillPoly(mask, [np.rint(source[list(INNER_LIPS)] * 16).astype(np.int32)], 0, cv2.LINE_8, 4)
    pixels = crop[mask > 0]
    lips = np.median(pixels, axis=0) if len(pixels) else DEFAULT_LIPS
    nose = source[list(NOSE_AND_CHEEKS)]
    x0, y0 = np.clip(np.floor(nose.min(axis=0)).astype(int), 0, size - 1)
    x1, y1 = np.clip(np.ceil(nose.max(axis=0)).astype(int) + 1, 1, size)
    patch = crop[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)].reshape(-1, 3).astype(np.float64)
    skin = float(np.percentile(patch @ LUMA, 80)) if len(patch) else float(lips @ LUMA)
    return np.asarray(lips, dtype=np.float64), skin


def _soft_polygon(polygon: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """(h,w) float weights of a polygon: anti-aliased, then blurred by `feather` px."""
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.rint(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    soft = mask.astype(np.float32) / 255
    blurred = cv2.GaussianBlur(soft, (0, 0), feather) if feather > 0 else soft
    return np.asarray(blurred, dtype=np.float64)


def _spline(points: np.ndarray) -> np.ndarray:
    """A Catmull-Rom curve through `points` (n,2), ends held: lip contours without the polygon's kinks."""
    padded = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, _SPLINE_STEPS, endpoint=False)[:, None]
    pieces = []
    for index in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[index - 1 : index + 3]
        pieces.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    return np.concatenate([*pieces, points[-1:]])


def _smoothstep(low: float, high: float, value: np.ndarray) -> np.ndarray:
    ramp = np.clip((value - low) / (high - low), 0.0, 1.0)
    return np.asarray(ramp * ramp * (3 - 2 * ramp))
