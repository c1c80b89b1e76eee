"""Per-frame face measures: eye distance, head pose from the landmarks, sharpness of the face."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pipelines.th.face.measures import (
    GENERIC_FACE_MM,
    POSE_LANDMARKS,
    angles_to_rotation,
    blur_score,
    head_pose,
    inter_ocular,
    line_of_sight,
    rotation_to_angles,
)

FRAME = (640, 480)


def position(centre: tuple[float, float], distance_mm: float = 600.0) -> np.ndarray:
    """Where a head is, in camera coordinates, when its eyes are seen at `centre` (px) from `distance_mm` away."""
    width, height = FRAME
    scale = distance_mm / width  # focal length = frame width
    return np.array([(centre[0] - width / 2) * scale, (centre[1] - height / 2) * scale, distance_mm])


def project(rotation: np.ndarray, *, centre: tuple[float, float] = (320.0, 240.0)) -> np.ndarray:
    """(68, 2) landmarks of the generic head turned by `rotation` (camera axes), 600 mm from a camera of focal
    length = frame width, its eyes seen at `centre`; points the model lacks are NaN (the pose must not need them)."""
    width, height = FRAME
    model = np.array([GENERIC_FACE_MM[index] for index in POSE_LANDMARKS])
    camera_points = model @ rotation.T + position(centre)
    points = np.full((68, 2), np.nan)
    points[list(POSE_LANDMARKS)] = width * camera_points[:, :2] / camera_points[:, 2:] + np.array([width, height]) / 2
    return points


def test_inter_ocular_is_the_distance_between_the_outer_eye_corners() -> None:
    points = np.zeros((68, 2))
    points[36], points[45] = (100.0, 200.0), (160.0, 280.0)

    assert inter_ocular(points) == pytest.approx(100.0)
    points[45] = np.nan
    assert math.isnan(inter_ocular(points))


@pytest.mark.parametrize(
    "angles",
    [(0, 0, 0), (30, 0, 0), (-40, 0, 0), (0, 20, 0), (0, -25, 0), (0, 0, 15), (25, -15, 10), (-45, 20, -20),
     (60, 5, 0)],
)
@pytest.mark.parametrize("centre", [(320.0, 240.0), (140.0, 380.0)])
def test_head_pose_recovers_known_angles_from_noisy_landmarks(
    angles: tuple[float, float, float], centre: tuple[float, float]
) -> None:
    # the angles are taken from looking into the lens, wherever the face is
    rotation = line_of_sight(position(centre)) @ angles_to_rotation(*angles)
    points = project(rotation, centre=centre)
    points += np.random.default_rng(0).normal(0.0, 0.5, points.shape)  # the detector's noise, px

    recovered = head_pose(points, FRAME)

    np.testing.assert_allclose(recovered, angles, atol=3.0)


@pytest.mark.parametrize("centre", [(40.0, 40.0), (600.0, 240.0), (320.0, 450.0)])
def test_a_face_looking_into_the_lens_is_frontal_anywhere_in_the_picture(centre: tuple[float, float]) -> None:
    facing_the_camera = project(line_of_sight(position(centre)), centre=centre)
    facing_ahead = project(np.eye(3), centre=centre)  # parallel to the optical axis: seen from the side

    np.testing.assert_allclose(head_pose(facing_the_camera, FRAME), (0, 0, 0), atol=0.1)
    assert max(abs(angle) for angle in head_pose(facing_ahead, FRAME)) > 10


def test_head_pose_signs_follow_the_subject() -> None:
    """Built from where the nose and eyes go in the picture, not from `angles_to_rotation`."""
    frontal = project(np.eye(3))
    eyes_mid_x = (frontal[36, 0] + frontal[45, 0]) / 2

    def turned(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
        rotation, _ = cv2.Rodrigues(np.radians(degrees) * np.array(axis, dtype=np.float64))
        return project(rotation)

    # turning about the vertical axis so that the nose goes to the image's right: the subject's own left
    to_their_left = turned((0, 1, 0), -25)
    assert to_their_left[30, 0] > eyes_mid_x + 10
    assert head_pose(to_their_left, FRAME)[0] == pytest.approx(25, abs=1)
    # nodding so that the nose goes up in the image: looking up
    looking_up = turned((1, 0, 0), -20)
    assert looking_up[30, 1] < frontal[30, 1] - 5
    assert head_pose(looking_up, FRAME)[1] == pytest.approx(20, abs=1)
    # the subject's left eye (45, image right) goes down: tilted towards their left shoulder
    tilted = turned((0, 0, 1), 12)
    assert tilted[45, 1] > tilted[36, 1] + 10
    assert head_pose(tilted, FRAME)[2] == pytest.approx(12, abs=1)


def test_angles_and_rotations_convert_both_ways() -> None:
    for angles in [(10.0, -20.0, 30.0), (-70.0, 40.0, -5.0), (0.0, 0.0, -90.0)]:
        rotation = angles_to_rotation(*angles)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(rotation_to_angles(rotation), angles, atol=1e-9)


def test_head_pose_is_nan_without_the_points_it_needs() -> None:
    points = project(np.eye(3))
    points[30] = np.nan

    assert all(math.isnan(angle) for angle in head_pose(points, FRAME))


def face_picture(height_px: int) -> np.ndarray:
    """A grey picture with a textured 'face' (blobs, lines, a few dark features) `height_px` tall in a 2x frame,
    drawn at 512 px and resized, so that every size shows the same content. Its finest detail is ~2 px at the
    128 px the score works at: detail finer than that is lost at that size, as it is on a small face."""
    rng = np.random.default_rng(5)
    canvas = np.full((1024, 1024), 128, dtype=np.uint8)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (512, 512)).astype(np.float32), (0, 0), 8)
    texture = 60 + 140 * (texture - texture.min()) / (texture.max() - texture.min())
    canvas[256:768, 256:768] = texture.astype(np.uint8)
    for y in range(300, 720, 40):
        cv2.line(canvas, (280, y), (740, y + 25), 30, 8)
    for centre in ((400, 420), (620, 420), (512, 650)):
        cv2.circle(canvas, centre, 30, 20, -1)
    interpolation = cv2.INTER_AREA if height_px < 512 else cv2.INTER_CUBIC
    return cv2.resize(canvas, (2 * height_px, 2 * height_px), interpolation=interpolation)


def box_for(height_px: int) -> tuple[float, float, float, float]:
    quarter = height_px / 2
    return (quarter, quarter, quarter + height_px, quarter + height_px)


def test_a_blurred_face_scores_far_lower_than_the_sharp_one() -> None:
    sharp = face_picture(300)
    slightly = cv2.GaussianBlur(sharp, (0, 0), 2)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)

    score = blur_score(sharp, box_for(300))
    assert blur_score(blurred, box_for(300)) < 0.2 * score
    assert blur_score(blurred, box_for(300)) < blur_score(slightly, box_for(300)) < score


def test_the_blur_score_does_not_depend_on_the_exposure() -> None:
    """A dim face is not a blurred face."""
    sharp = face_picture(300)
    dim = (sharp * 0.3).astype(np.uint8)

    assert blur_score(dim, box_for(300)) == pytest.approx(blur_score(sharp, box_for(300)), rel=0.05)


def test_the_blur_score_does_not_depend_on_the_face_size() -> None:
    scores = [blur_score(face_picture(height), box_for(height)) for height in (100, 300, 1080)]

    assert max(scores) < 1.2 * min(scores)
    # what the resizing prevents: the raw Laplacian of the big face is several times weaker
    raw = [float(cv2.Laplacian(face_picture(h).astype(np.float32), cv2.CV_32F).var()) for h in (150, 800)]
    assert raw[0] > 4 * raw[1]


def test_the_blur_score_ignores_what_is_outside_the_frame() -> None:
    picture = face_picture(200)

    assert math.isnan(blur_score(picture, (500.0, 500.0, 700.0, 700.0)))
    inside = blur_score(picture, box_for(200))
    assert blur_score(picture, (100.0, 100.0, 300.0, 300.0)) == pytest.approx(inside)
    assert math.isfinite(blur_score(picture, (-50.0, 200.0, 150.0, 450.0)))
