"""MouthModel: the twin's neutral closed mouth, found in a talking video, and deformed by opening and width.

The twin here is synthetic and known exactly: a mean face whose mouth opens and closes while the head turns,
nods and moves (random similarities), with landmark noise, so every expectation has a true answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.th.classical.mouth_shape import OPEN_GAP_PER_WIDTH, MouthModel, inner_gap
from pipelines.th.classical.warp import MEAN_FACE

LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
Pose = tuple[float, float, tuple[float, float]]
Twin = tuple[np.ndarray, np.ndarray, list[Pose]]


def closed_face() -> np.ndarray:
    """MEAN_FACE at 400 px with its lips closed exactly (inner lower lip on the inner upper lip)."""
    face = MEAN_FACE * 400.0
    gap = face[[67, 66, 65], 1] - face[[61, 62, 63], 1]
    face[[55, 56, 57, 58, 59], 1] -= gap.mean()
    face[[67, 66, 65]] = face[[61, 62, 63]]
    return face


def similarity(points: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    angle = np.radians(angle_deg)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([200.0, 200.0])
    return np.asarray((points - centre) @ rotation.T + centre + np.asarray(shift))


@pytest.fixture(scope="module")
def twin() -> Twin:
    """60 frames: (points (60,68,2), true gaps (60,), the head pose of each frame). A fifth of them closed."""
    rng = np.random.default_rng(7)
    base = closed_face()
    frames, gaps, poses = [], [], []
    for index in range(60):
        gap = 0.0 if index % 5 == 0 else float(rng.uniform(4.0, 30.0))
        face = base.copy()
        face[LOWER_LIP, 1] += gap
        shift = (float(rng.uniform(-20, 20)), float(rng.uniform(-20, 20)))
        pose = (float(rng.uniform(-15, 15)), float(rng.uniform(0.8, 1.3)), shift)
        frames.append(similarity(face, *pose) + rng.normal(0.0, 0.2, face.shape))
        gaps.append(gap)
        poses.append(pose)
    return np.array(frames), np.array(gaps), poses


def test_the_neutral_mouth_comes_from_closed_frames_and_opening_zero_reproduces_it(twin: Twin) -> None:
    points, gaps, poses = twin
    model = MouthModel.fit(points, np.ones(len(points), dtype=bool))
    assert set(model.closed_frames.tolist()) <= set(np.flatnonzero(gaps == 0).tolist())
    # opening 0 in frame 3 (a talking frame with its mouth open) gives the closed mouth placed with that head pose
    for frame in (3, 7, 10):
        mouth = model.mouth_points(points[frame : frame + 1], np.zeros(1), np.zeros(1))[0]
        truth = similarity(closed_face(), *poses[frame])[48:]
        face_px = np.hypot(*(truth[54 - 48] - truth[0]))
        assert np.abs(mouth - truth).max() < 0.03 * face_px  # landmark noise only
        assert inner_gap(np.concatenate([points[frame, :48], mouth])) == pytest.approx(0.0, abs=1e-4)


def test_mouth_follows_a_rotated_scaled_moved_head(twin: Twin) -> None:
    points, _, _ = twin
    model = MouthModel.fit(points, np.ones(len(points), dtype=bool))
    source = points[4]
    moved = similarity(source, 25.0, 1.6, (30.0, -12.0))
    opening, width = np.array([0.6, 0.6]), np.array([0.3, 0.3])
    mouths = model.mouth_points(np.stack([source, moved]), opening, width)
    np.testing.assert_allclose(mouths[1], similarity(mouths[0], 25.0, 1.6, (30.0, -12.0)), atol=1e-2)


def test_opening_parts_the_lips_monotonically_up_to_the_documented_share_of_the_width(twin: Twin) -> None:
    points, _, _ = twin
    model = MouthModel.fit(points, np.ones(len(points), dtype=bool))
    openings = np.linspace(0.0, 1.0, 11)
    source = np.repeat(points[5:6], len(openings), axis=0)
    mouths = model.mouth_points(source, openings, np.zeros(len(openings)))
    faces = np.concatenate([source[:, :48], mouths], axis=1)
    gaps = inner_gap(faces)
    assert gaps[0] == pytest.approx(0.0, abs=1e-4)
    assert np.all(np.diff(gaps) > 0)
    width_px = np.hypot(*(mouths[0, 6] - mouths[0, 0]))
    # the middle pair opens by exactly the documented share; the side pairs a little less (elliptic profile)
    middle = np.hypot(*(mouths[-1, 66 - 48] - mouths[-1, 62 - 48]))
    assert middle == pytest.approx(OPEN_GAP_PER_WIDTH * width_px, rel=0.02)
    assert 0.8 * middle < gaps[-1] < middle
    # the lower lip moves more than the upper one (the jaw drops)
    lower = mouths[-1, 57 - 48, 1] - mouths[0, 57 - 48, 1]
    upper = mouths[0, 51 - 48, 1] - mouths[-1, 51 - 48, 1]
    assert lower > 2 * upper > 0


def test_width_moves_the_corners_and_keeps_a_closed_mouth_closed(twin: Twin) -> None:
    points, _, _ = twin
    model = MouthModel.fit(points, np.ones(len(points), dtype=bool))
    widths = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    source = np.repeat(points[0:1], len(widths), axis=0)
    mouths = model.mouth_points(source, np.zeros(len(widths)), widths)
    corner_distance = np.hypot(*(mouths[:, 6] - mouths[:, 0]).T)
    assert np.all(np.diff(corner_distance) > 0)
    assert corner_distance[-1] > 1.15 * corner_distance[2] and corner_distance[0] < 0.8 * corner_distance[2]
    faces = np.concatenate([source[:, :48], mouths], axis=1)
    np.testing.assert_allclose(inner_gap(faces), 0.0, atol=1e-4)
    # rounding ("oo"): the lips stand further apart vertically, outer upper to outer lower
    height = mouths[:, 57 - 48, 1] - mouths[:, 51 - 48, 1]
    assert height[0] > height[2] > height[-1]


def test_parameters_are_clipped_and_faceless_frames_give_nan(twin: Twin) -> None:
    points, _, _ = twin
    model = MouthModel.fit(points, np.ones(len(points), dtype=bool))
    source = np.stack([points[1], points[1], np.full((68, 2), np.nan)])
    mouths = model.mouth_points(source, np.array([1.0, 3.0, 0.5]), np.array([1.0, 9.0, 0.0]))
    np.testing.assert_allclose(mouths[0], mouths[1])
    assert np.isnan(mouths[2]).all() and np.isfinite(mouths[:2]).all()


def test_fit_uses_faces_when_none_is_usable_and_refuses_a_video_without_faces(twin: Twin) -> None:
    points, _, _ = twin
    unusable = MouthModel.fit(points, np.zeros(len(points), dtype=bool))
    usable = MouthModel.fit(points, np.ones(len(points), dtype=bool))
    np.testing.assert_allclose(unusable.neutral, usable.neutral)
    # usable frames are preferred: with only talking frames usable, the closed ones are not used
    talking = np.arange(len(points)) % 5 != 0
    assert not set(MouthModel.fit(points, talking).closed_frames.tolist()) & set(np.flatnonzero(~talking).tolist())
    with pytest.raises(BadInput, match="no frame with a face"):
        MouthModel.fit(np.full((4, 68, 2), np.nan), np.ones(4, dtype=bool))
