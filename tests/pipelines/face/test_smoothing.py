"""One-Euro smoothing of landmark tracks, and the jitter metric that reports it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.th.face.smoothing import STABLE_LANDMARKS, jitter, smooth_points, smooth_points_causal

FPS = 25.0
FACE_PX = 256.0
STABLE = list(STABLE_LANDMARKS)
LIPS = list(range(48, 68))
_SHAPE = np.random.default_rng(3).uniform(-0.5, 0.5, (68, 2))


def talking_head(
    frames: int = 250,
    *,
    face_px: float = FACE_PX,
    noise_px: float = 1.0,
    sway: float = 0.1,
    lip_hz: float = 4.0,
    turn_at_s: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(true, noisy) (N, 68, 2) tracks: a head swaying slowly (by `sway` of the face), lips opening and closing 5 %
    of the face at `lip_hz`, optionally a fast turn (30 % of the face in ~0.2 s) at `turn_at_s`, plus white noise."""
    t = np.arange(frames) / FPS
    head = np.stack(
        [sway * face_px * np.sin(2 * np.pi * 0.3 * t), sway / 2 * face_px * np.sin(2 * np.pi * 0.5 * t + 1.0)], axis=1
    )
    if turn_at_s is not None:
        head[:, 0] += 0.3 * face_px / (1.0 + np.exp(-(t - turn_at_s) / 0.04))
    mouth = np.zeros((68, 2))
    mouth[48:68, 1] = np.where(np.arange(48, 68) < 58, -1.0, 1.0)  # upper lip up, lower lip down
    lips = 0.05 * face_px * np.sin(2 * np.pi * lip_hz * t)
    true = 300.0 + _SHAPE * face_px + head[:, None, :] + lips[:, None, None] * mouth
    noisy = true + np.random.default_rng(seed).normal(0.0, noise_px, true.shape)
    return true, noisy


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a - b))))


def lip_amplitude(track: np.ndarray, true: np.ndarray) -> float:
    """The amplitude of the lips' opening in `track` relative to the true one (1 = kept whole)."""
    opening = track[:, 58:68, 1].mean(axis=1) - track[:, 48:58, 1].mean(axis=1)
    truth = true[:, 58:68, 1].mean(axis=1) - true[:, 48:58, 1].mean(axis=1)
    opening, truth = opening - opening.mean(), truth - truth.mean()
    return float(np.dot(opening, truth) / np.dot(truth, truth))


@pytest.mark.parametrize(("sway", "jitter_kept"), [(0.02, 0.5), (0.1, 0.7)])
def test_smoothing_removes_jitter_and_stays_on_the_true_motion(sway: float, jitter_kept: float) -> None:
    """A talking head, nearly still or swaying by 10 % of its size: the moving one keeps more jitter, since speed
    opens the filter."""
    true, noisy = talking_head(sway=sway)
    found = np.ones(len(true), dtype=bool)

    smoothed = smooth_points(noisy, found, FPS)

    assert jitter(noisy, found) == pytest.approx(1.0, rel=0.15)  # the noise we put in
    assert jitter(smoothed, found) < jitter_kept * jitter(noisy, found)
    # closer to the truth than the raw landmarks on the head's points, and the lips keep their movement
    assert rms(smoothed[:, STABLE], true[:, STABLE]) < 0.8 * rms(noisy[:, STABLE], true[:, STABLE])
    assert rms(smoothed[:, LIPS], true[:, LIPS]) < 1.1 * rms(noisy[:, LIPS], true[:, LIPS])
    assert lip_amplitude(smoothed, true) > 0.9


def test_a_fast_head_turn_is_followed_with_bounded_lag() -> None:
    true, noisy = talking_head(turn_at_s=5.0)
    found = np.ones(len(true), dtype=bool)

    smoothed = smooth_points(noisy, found, FPS)
    causal = smooth_points_causal(noisy, found, FPS)

    turn = slice(int(4.5 * FPS), int(5.5 * FPS))
    worst = np.abs(smoothed[turn, STABLE] - true[turn, STABLE]).max()
    assert worst < 0.02 * FACE_PX  # 5 px while the head moves 77 px in a fifth of a second
    # the causal filter trails the move; running it both ways removes that lag
    causal_worst = np.abs(causal[turn, STABLE] - true[turn, STABLE]).max()
    assert causal_worst > worst


def test_parameters_are_scale_invariant() -> None:
    _, noisy = talking_head(noise_px=1.5)
    found = np.ones(len(noisy), dtype=bool)

    small = smooth_points(noisy, found, FPS)
    large = smooth_points(noisy * 4.2 + 17.0, found, FPS)

    np.testing.assert_allclose(large, small * 4.2 + 17.0, rtol=1e-5, atol=1e-3)


def test_missing_frames_stay_nan_and_the_filter_restarts_after_a_gap() -> None:
    _, noisy = talking_head(frames=100)
    noisy[60:] += 200.0  # the face is elsewhere after the gap
    found = np.ones(100, dtype=bool)
    found[50:60] = False

    smoothed = smooth_points(noisy, found, FPS)

    assert np.isnan(smoothed[50:60]).all()
    assert np.isfinite(smoothed[:50]).all() and np.isfinite(smoothed[60:]).all()
    # the run after the gap is smoothed as if it were a video of its own: nothing glides over from before the gap
    np.testing.assert_array_equal(smoothed[60:], smooth_points(noisy[60:], found[60:], FPS))
    assert np.abs(smoothed[60] - noisy[60]).max() < 5.0


def test_frames_marked_found_but_without_points_are_treated_as_missing() -> None:
    _, noisy = talking_head(frames=40)
    noisy[20] = np.nan

    smoothed = smooth_points(noisy, np.ones(40, dtype=bool), FPS)

    assert np.isnan(smoothed[20]).all()
    assert np.isfinite(smoothed[:20]).all() and np.isfinite(smoothed[21:]).all()


def test_the_causal_filter_starts_on_the_first_point_and_holds_a_still_face() -> None:
    still = np.repeat((300.0 + _SHAPE * FACE_PX)[None], 30, axis=0)

    smoothed = smooth_points_causal(still, np.ones(30, dtype=bool), FPS)

    np.testing.assert_allclose(smoothed, still, atol=1e-3)
    assert smoothed.dtype == np.float32


def test_jitter_reads_the_noise_not_the_motion() -> None:
    true, noisy = talking_head(noise_px=2.0)
    found = np.ones(len(true), dtype=bool)

    assert jitter(true, found) < 0.3  # swaying head and talking lips, no noise
    assert jitter(noisy, found) == pytest.approx(2.0, rel=0.1)
    assert jitter(noisy, found, scale=200.0) == pytest.approx(jitter(noisy, found) / 200.0)


def test_jitter_uses_only_runs_of_three_found_frames() -> None:
    rng = np.random.default_rng(1)
    points = np.zeros((9, 68, 2))
    points[3] = rng.normal(0.0, 50.0, (68, 2))  # wild, but never the middle of three found frames
    found = np.array([True, True, False, True, False, True, True, True, False])
    points[~found] = np.nan

    assert jitter(points, found) == 0.0
    assert math.isnan(jitter(points, np.array([True, True, False] * 3)))


def test_bad_arguments_are_refused() -> None:
    points = np.zeros((5, 68, 2))
    with pytest.raises(ValueError, match="found"):
        smooth_points(points, np.ones(4, dtype=bool), FPS)
    with pytest.raises(ValueError, match="fps"):
        smooth_points(points, np.ones(5, dtype=bool), 0.0)
