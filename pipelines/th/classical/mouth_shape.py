"""Mouth parameters (opening, width) -> the 20 mouth landmarks (iBUG 48-67) of the twin, frame by frame.

The twin's own video shows a person who may be talking, so its mouth in any one frame is no rest pose. `MouthModel`
finds the twin's NEUTRAL CLOSED mouth once: every usable frame's mouth is expressed in a face-normalised frame (a
similarity fitted to points that do not move with speech: eye corners 36, 39, 42, 45 and the nose bridge 27-30; the
jaw drops with every syllable, so it is left out), and the median of the frames with the smallest inner-lip gap is
taken, then its inner lips are closed exactly. For each output frame that mouth is put into the source frame with the
source frame's own similarity (so it follows the head) and deformed:

    opening o in [0, 1]: the inner lips part by OPEN_GAP_PER_WIDTH x mouth width x o at the middle (0.45: a wide
        "ah"; speech mostly stays under 0.6 of it), the lower lip taking LOWER_LIP_SHARE of the move (the jaw
        drops), the upper lip the rest; the move tapers towards the corners like an ellipse; the corners drop a
        little and come in a little;
    width w in [-1, 1]: the mouth is stretched sideways about its centre (w > 0, "ee", lips thinner) or narrowed
        and rounded (w < 0, "oo": narrower, lips pushed apart vertically).
o = 0 gives the closed neutral mouth for any w (the inner lips touch: both lips of a pair move alike).

Coordinates: the normalised frame has the outer eye corners one unit apart, the eye line along +x, y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.base import BadInput

STABLE = (27, 28, 29, 30, 36, 39, 42, 45)
MOUTH_START = 48
OPEN_GAP_PER_WIDTH = 0.45
LOWER_LIP_SHARE = 0.8
CORNER_DROP = 0.15  # corners move down by this share of the gap
NARROW_ON_OPEN = 0.08  # the mouth is this much narrower at full opening
WIDEN = 0.2  # w = 1 stretches the mouth sideways by 20 %
NARROW = 0.3  # w = -1 narrows it by 30 %
ROUND = 0.25  # ... and pushes the lips 25 % further from the corner line
THIN = 0.1  # w = 1 makes the lips 10 % thinner
CLOSED_SHARE = 0.1  # the neutral mouth is the median of this share of frames with the smallest gap
MIN_CLOSED_FRAMES = 3

# Indices into the 20 mouth points (iBUG index - 48).
_UPPER_OUTER = np.arange(1, 6)  # 49-53
_LOWER_OUTER = np.arange(7, 12)  # 55-59
_UPPER_INNER = np.arange(13, 16)  # 61-63
_LOWER_INNER = np.array([19, 18, 17])  # 67, 66, 65: paired with 61, 62, 63
_CORNERS = np.array([0, 6, 12, 16])  # 48, 54, 60, 64
_INNER = np.arange(12, 20)


@dataclass(frozen=True, eq=False)
class MouthModel:
    """The twin's closed neutral mouth. `reference` (8,2): the mean STABLE points in the normalised frame;
    `neutral` (20,2): iBUG 48-67 there, inner lips touching; `closed_frames`: the frames it was taken from."""

    reference: np.ndarray
    neutral: np.ndarray
    closed_frames: np.ndarray

    @property
    def mouth_width(self) -> float:
        """Corner-to-corner width of the neutral mouth, normalised units (outer eye distance = 1)."""
        return float(np.hypot(*(self.neutral[6] - self.neutral[0])))

    @classmethod
    def fit(cls, points: np.ndarray, usable: np.ndarray) -> MouthModel:
        """The neutral closed mouth of a twin from its per-frame landmarks (N,68,2) and `usable` (N,) flags.

        Frames whose points are not all finite are ignored; when no usable frame is left, every frame with a face
        is used; BadInput when there is none.
        """
        points = np.asarray(points, dtype=np.float64)
        usable = np.asarray(usable, dtype=bool)
        if points.ndim != 3 or points.shape[1:] != (68, 2) or usable.shape != points.shape[:1]:
            raise ValueError(f"expected points (N,68,2) and usable (N,), not {points.shape} and {usable.shape}")
        finite = np.isfinite(points).all(axis=(1, 2))
        chosen = np.flatnonzero(finite & usable)
        if chosen.size == 0:
            chosen = np.flatnonzero(finite)
        if chosen.size == 0:
            raise BadInput(
                "the twin's video landmarks have no frame with a face, so its mouth cannot be modelled: upload a "
                "video in which the person faces the camera and run preprocess again"
            )
        faces = points[chosen]
        reference = _procrustes_mean(faces[:, STABLE])
        scale, shift = similarities(faces[:, STABLE], reference)
        mouths = apply_similarities(scale, shift, faces[:, MOUTH_START:])
        gaps = _signed_gaps(mouths)
        count = min(len(chosen), max(MIN_CLOSED_FRAMES, int(np.ceil(CLOSED_SHARE * len(chosen)))))
        closest = np.argsort(gaps, kind="stable")[:count]
        neutral = _close(np.median(mouths[closest], axis=0))
        return cls(reference=reference, neutral=neutral, closed_frames=np.sort(chosen[closest]))

    def shape(self, opening: np.ndarray, width: np.ndarray) -> np.ndarray:
        """(T,20,2) mouths in the normalised frame for parameters (T,) each (clipped to their ranges)."""
        opening = np.clip(np.asarray(opening, dtype=np.float64), 0.0, 1.0)[:, None]
        width = np.clip(np.asarray(width, dtype=np.float64), -1.0, 1.0)[:, None]
        mouth = np.broadcast_to(self.neutral, opening.shape[:1] + self.neutral.shape).copy()
        x, y = mouth[..., 0], mouth[..., 1]
        mouth_w = self.mouth_width
        centre_x = (self.neutral[0, 0] + self.neutral[6, 0]) / 2
        gap = OPEN_GAP_PER_WIDTH * mouth_w * opening  # (T,1)
        outer_half = mouth_w / 2
        inner_half = max(abs(self.neutral[16, 0] - self.neutral[12, 0]) / 2, 1e-6)
        profile = np.zeros(20)
        outer = np.r_[_UPPER_OUTER, _LOWER_OUTER]
        profile[outer] = _ellipse((self.neutral[outer, 0] - centre_x) / outer_half)
        inner = np.r_[_UPPER_INNER, _LOWER_INNER]
        profile[inner] = _ellipse((self.neutral[inner, 0] - centre_x) / inner_half)
        lower = np.r_[_LOWER_OUTER, _LOWER_INNER]
        upper = np.r_[_UPPER_OUTER, _UPPER_INNER]
        y[:, lower] += LOWER_LIP_SHARE * gap * profile[lower]
        y[:, upper] -= (1 - LOWER_LIP_SHARE) * gap * profile[upper]
        y[:, _CORNERS] += CORNER_DROP * gap
        x -= NARROW_ON_OPEN * opening * (x - centre_x)
        corner_y = y[:, _CORNERS].mean(axis=1, keepdims=True)
        sideways = 1 + np.where(width > 0, WIDEN, NARROW) * width
        vertical = 1 + np.where(width > 0, -THIN * width, -ROUND * width)
        x[:] = centre_x + (x - centre_x) * sideways
        not_corner = np.setdiff1d(np.arange(20), _CORNERS)
        y[:, not_corner] = corner_y + (y[:, not_corner] - corner_y) * vertical
        return np.asarray(mouth)

    def mouth_points(self, source_points: np.ndarray, opening: np.ndarray, width: np.ndarray) -> np.ndarray:
        """(T,20,2) float32 mouth landmarks in the pixels of each frame's source frame `source_points` (T,68,2).

        Frames whose stable points are not finite get NaN.
        """
        source = np.asarray(source_points, dtype=np.float64)
        opening, width = np.asarray(opening), np.asarray(width)
        if source.ndim != 3 or source.shape[1:] != (68, 2) or opening.shape != source.shape[:1]:
            raise ValueError(f"expected source points (T,68,2) and opening (T,), not {source.shape}, {opening.shape}")
        if width.shape != opening.shape:
            raise ValueError(f"opening {opening.shape} and width {width.shape} must have one value per frame")
        scale, shift = similarities(source[:, STABLE], self.reference)  # frame -> normalised
        with np.errstate(invalid="ignore", divide="ignore"):
            inverse_scale = 1 / scale
            inverse_shift = -shift / scale
        mouths = apply_similarities(inverse_scale, inverse_shift, self.shape(opening, width))
        return np.asarray(mouths, dtype=np.float32)


def inner_gap(points: np.ndarray) -> np.ndarray:
    """(...) mean distance between the inner lips (62-66, 61-67, 63-65) of (...,68,2) landmarks, their pixels."""
    points = np.asarray(points, dtype=np.float64)
    pairs = np.array([(62, 66), (61, 67), (63, 65)])
    return np.asarray(np.linalg.norm(points[..., pairs[:, 1], :] - points[..., pairs[:, 0], :], axis=-1).mean(-1))


def _ellipse(offset: np.ndarray) -> np.ndarray:
    """How much of the middle's opening a point `offset` half-widths from the centre gets."""
    return np.asarray(np.sqrt(np.clip(1 - offset**2, 0.0, 1.0)))


def _signed_gaps(mouths: np.ndarray) -> np.ndarray:
    """(N,) inner-lip gap of normalised mouths (N,20,2), signed (negative: the lips overlap)."""
    return np.asarray((mouths[:, _LOWER_INNER, 1] - mouths[:, _UPPER_INNER, 1]).mean(axis=1))


def _close(mouth: np.ndarray) -> np.ndarray:
    """Close a nearly closed mouth exactly: each lip moves half the residual gap, then paired points coincide."""
    closed = np.array(mouth, dtype=np.float64, copy=True)
    residual = float(_signed_gaps(closed[None])[0])
    closed[np.r_[_LOWER_OUTER, _LOWER_INNER], 1] -= residual / 2
    closed[np.r_[_UPPER_OUTER, _UPPER_INNER], 1] += residual / 2
    middle = (closed[_UPPER_INNER] + closed[_LOWER_INNER]) / 2
    closed[_UPPER_INNER] = middle
    closed[_LOWER_INNER] = middle
    return closed


def _to_complex(points: np.ndarray) -> np.ndarray:
    return np.asarray(points[..., 0] + 1j * points[..., 1])


def similarities(points: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarities z -> scale z + shift (complex (N,1) each, z = x + iy) taking points (N,K,2) onto
    target (K,2); NaN where the points are not finite."""
    z = _to_complex(points)
    w = _to_complex(target)[None]
    z_mean, w_mean = z.mean(axis=1, keepdims=True), w.mean(axis=1, keepdims=True)
    zc, wc = z - z_mean, w - w_mean
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = (np.conj(zc) * wc).sum(axis=1, keepdims=True) / (np.abs(zc) ** 2).sum(axis=1, keepdims=True)
    return scale, w_mean - scale * z_mean


def apply_similarities(scale: np.ndarray, shift: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per-frame similarities (from `similarities`) applied to points (N,K,2)."""
    z = scale * _to_complex(points) + shift
    return np.stack([z.real, z.imag], axis=-1)


def _procrustes_mean(stable: np.ndarray, iterations: int = 3) -> np.ndarray:
    """The mean shape (K,2) of stable points (N,K,2) under similarities, normalised: centred on the origin, the
    outer eye corners one unit apart on the +x axis."""
    mean = _normalise(stable[len(stable) // 2])
    for _ in range(iterations):
        scale, shift = similarities(stable, mean)
        mean = _normalise(apply_similarities(scale, shift, stable).mean(axis=0))
    return mean


def _normalise(shape: np.ndarray) -> np.ndarray:
    z = _to_complex(shape)
    z = z - z.mean()
    eyes = z[STABLE.index(45)] - z[STABLE.index(36)]
    z = z / eyes  # rotates the eye line onto +x and scales it to one unit
    return np.stack([z.real, z.imag], axis=-1)
