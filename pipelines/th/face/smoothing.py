"""Landmark smoothing (a One-Euro filter over every coordinate at once) and the jitter metric that judges it.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose cut-off rises with speed:
a still face is smoothed hard (the detector's frame-to-frame noise disappears) while a moving mouth or head gets
a high cut-off (little lag). Here the speed is measured per landmark (the 2-D speed of the point) and divided by
the face's size, so one set of parameters works for a 256 px face and a 1080 px face.

The preprocess works offline, so `smooth_points` runs the filter forwards and backwards over each run of frames and
averages the two passes: the causal filter's lag (the output trails a fast move) and the backward pass's lead
cancel, which matters for landmarks that must stay in step with the audio. `smooth_points_causal` is the paper's
filter, for comparison (and for live use).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipelines.th.face import ibug

# Chosen on synthetic 25 fps tracks (still, swaying and turning heads; lips at 2-5 Hz; noise 0.2-0.6 % of the face)
# for the lowest error against the true motion on the nose/eyes and on the lips together; see `smooth_points`.
DEFAULT_MIN_CUTOFF_HZ = 0.5
DEFAULT_BETA = 30.0
DEFAULT_D_CUTOFF_HZ = 8.0

# Points whose true motion between frames is almost only the head's (no lips, jaw, brows or eyelids), so the
# jitter measured on them is the detector's noise rather than speech or expressions.
STABLE_LANDMARKS: tuple[int, ...] = (
    *ibug.NOSE_BRIDGE,
    *ibug.NOSE_LOWER,
    ibug.RIGHT_EYE_OUTER,
    ibug.RIGHT_EYE_INNER,
    ibug.LEFT_EYE_INNER,
    ibug.LEFT_EYE_OUTER,
)


def smooth_points(
    points: np.ndarray,
    found: np.ndarray,
    fps: float,
    *,
    min_cutoff: float = DEFAULT_MIN_CUTOFF_HZ,
    beta: float = DEFAULT_BETA,
    d_cutoff: float = DEFAULT_D_CUTOFF_HZ,
) -> np.ndarray:
    """Smooth (N, 68, 2) landmark tracks with a One-Euro filter run both ways (no lag); frames where `found` is
    False stay NaN.

    Each run of consecutive found frames is filtered on its own: after a gap the filter restarts from the first
    frame of the new run instead of gliding from where the face was before the gap.

    Speeds are measured in face sizes per second (face size = the height of the frame's landmark box, brows to
    chin), so the parameters do not depend on the resolution: scaling every point by k scales the result by k.

    min_cutoff  Hz, the cut-off for a point at rest (0.5 Hz).
    beta        Hz per (face size / s), how fast the cut-off opens with a point's speed (30). A lip opening and
                closing at syllable rate (4 Hz, 5 % of the face) moves at ~1.3 face/s: its cut-off passes 30 Hz,
                so speech is kept whole. The detector's own noise also reads as speed (noise of 0.4 % of the face,
                1 px on a 256 px face, gives ~0.09 face/s at 25 fps), so a still face is filtered at ~3 Hz, which
                removes about 60 % of the frame-to-frame jitter.
    d_cutoff    Hz, the low-pass on the speed estimate (8). NOTE: the paper's 1 Hz suits a pointer; on landmarks
                it hides the speed of a 4 Hz lip movement, the cut-off stays low and the lips lose a quarter of
                their amplitude; at 8 Hz they keep 97 % (measured), which is what a talking head needs.
    """
    return _smooth(points, found, fps, min_cutoff, beta, d_cutoff, zero_phase=True)


def smooth_points_causal(
    points: np.ndarray,
    found: np.ndarray,
    fps: float,
    *,
    min_cutoff: float = DEFAULT_MIN_CUTOFF_HZ,
    beta: float = DEFAULT_BETA,
    d_cutoff: float = DEFAULT_D_CUTOFF_HZ,
) -> np.ndarray:
    """`smooth_points` with the paper's causal filter only: each output depends on the frames up to it, so it
    trails fast moves by a few frames."""
    return _smooth(points, found, fps, min_cutoff, beta, d_cutoff, zero_phase=False)


def _smooth(
    points: np.ndarray,
    found: np.ndarray,
    fps: float,
    min_cutoff: float,
    beta: float,
    d_cutoff: float,
    *,
    zero_phase: bool,
) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    found = np.asarray(found, dtype=bool)
    if points.ndim != 3 or points.shape[2] != 2 or found.shape != points.shape[:1]:
        raise ValueError(f"points must be (N, K, 2) and found (N,); got {points.shape} and {found.shape}")
    if fps <= 0 or min_cutoff <= 0 or beta < 0 or d_cutoff <= 0:
        raise ValueError(
            f"need fps, min_cutoff, d_cutoff > 0 and beta >= 0; got {fps=}, {min_cutoff=}, {d_cutoff=}, {beta=}"
        )
    found = found & np.isfinite(points).all(axis=(1, 2))
    result = np.full(points.shape, np.nan, dtype=np.float32)
    for start, stop in found_runs(found):
        run = points[start:stop]
        sizes = _face_sizes(run)
        forward = _one_euro(run, sizes, fps, min_cutoff, beta, d_cutoff)
        if zero_phase:
            backward = _one_euro(run[::-1], sizes[::-1], fps, min_cutoff, beta, d_cutoff)[::-1]
            forward = (forward + backward) / 2.0
        result[start:stop] = forward
    return result


def jitter(
    points: np.ndarray,
    found: np.ndarray,
    scale: float | None = None,
    *,
    landmarks: Sequence[int] = STABLE_LANDMARKS,
) -> float:
    """Frame-to-frame landmark noise: px (or fractions of `scale`), NaN when no 3 consecutive frames have a face.

    For every 3 consecutive found frames the second temporal difference p[t+1] - 2 p[t] + p[t-1] of each
    coordinate is taken; the result is the RMS of those differences divided by sqrt(6). For white noise of
    standard deviation s on a still face this equals s, so the number reads as "the landmarks shake by about
    this many px". A smooth motion (constant speed) has no second difference, and a head's acceleration over
    two frames (80 ms at 25 fps) is small, so real motion barely counts; speech and expressions are kept out by
    measuring only the `landmarks` that move with the head (nose and eye corners). NOTE: a lively head still adds
    its own acceleration: on an 8 s clip of a person nodding as she talks (MediaPipe, 322 px face) half of the 1.1 px
    measured goes when each frame's mean motion is taken out first.

    scale   divide by it (e.g. the median face height or inter-ocular distance in px) to compare videos of
            different resolutions; None reports px.
    """
    points = np.asarray(points, dtype=np.float64)[:, list(landmarks)]
    found = np.asarray(found, dtype=bool) & np.isfinite(points).all(axis=(1, 2))
    triples = found[2:] & found[1:-1] & found[:-2]
    if not triples.any():
        return math.nan
    second = points[2:] - 2.0 * points[1:-1] + points[:-2]
    value = float(np.sqrt(np.mean(np.square(second[triples])) / 6.0))
    if scale is not None:
        if not scale > 0:
            return math.nan
        value /= scale
    return value


def found_runs(found: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the runs of consecutive True values."""
    padded = np.concatenate(([False], np.asarray(found, dtype=bool), [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(start), int(stop)) for start, stop in zip(edges[0::2], edges[1::2], strict=True)]


def _face_sizes(run: np.ndarray) -> np.ndarray:
    """(T,) the height of each frame's landmark box, px; the unit speeds are divided by."""
    heights = run[:, :, 1].max(axis=1) - run[:, :, 1].min(axis=1)
    widths = run[:, :, 0].max(axis=1) - run[:, :, 0].min(axis=1)
    # NOTE: a degenerate (flat) point set would divide by zero; fall back to the width, then to 1 px.
    return np.asarray(np.maximum(np.maximum(heights, 0.5 * widths), 1.0))


def _alpha(cutoff_hz: np.ndarray, fps: float) -> np.ndarray:
    """The exponential smoothing factor of a first-order low-pass at `cutoff_hz` sampled at `fps`."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return np.asarray(1.0 / (1.0 + tau * fps))


def _one_euro(
    run: np.ndarray, sizes: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float
) -> np.ndarray:
    """The causal One-Euro filter over a (T, K, 2) run with no missing frames."""
    out = np.empty_like(run)
    out[0] = run[0]
    velocity = np.zeros(run.shape[1:])  # (K, 2) filtered derivative, px / s
    alpha_d = _alpha(np.asarray(d_cutoff), fps)
    for t in range(1, run.shape[0]):
        raw_velocity = (run[t] - out[t - 1]) * fps
        velocity = velocity + alpha_d * (raw_velocity - velocity)
        speed = np.hypot(velocity[:, 0], velocity[:, 1]) / sizes[t]
        alpha = _alpha(min_cutoff + beta * speed, fps)[:, None]
        out[t] = out[t - 1] + alpha * (run[t] - out[t - 1])
    return out
