"""The bi-layer crop rule, its keypoint mapping and the padding it marks."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.bilayer.crop import CropBox, crop_face, face_box, inside_frame, points_in_crop


def square_points(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """68 points spread over the box (x0, y0)-(x1, y1), corners included."""
    grid = np.stack(np.meshgrid(np.linspace(x0, x1, 17), np.linspace(y0, y1, 4)), axis=-1).reshape(-1, 2)
    return grid.astype(np.float32)


def test_face_box_is_twice_the_extent_raised_by_a_sixth() -> None:
    box = face_box(square_points(100, 150, 200, 230))  # extent 100 (width), centre (150, 190)

    assert box == CropBox(x0=50, y0=190 - 16 - 100, side=200)


@pytest.mark.parametrize("points", [np.full((68, 2), np.nan), square_points(10, 10, 14, 13)])
def test_no_box_without_a_measurable_face(points: np.ndarray) -> None:
    assert face_box(points) is None


def test_keypoints_land_on_the_same_spot_of_the_crop() -> None:
    # A frame whose red channel is 4x and green 4y: every pixel says where it is; bicubic keeps a ramp exact.
    ys, xs = np.mgrid[0:64, 0:64]
    frame = np.stack([4 * xs, 4 * ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    box = CropBox(x0=8, y0=8, side=48)
    image = crop_face(frame, box, 192).astype(np.float64)
    points = np.random.default_rng(0).uniform(14, 48, size=(68, 2)).astype(np.float32)

    mapped = points_in_crop(points, box, 192)

    u, v = mapped[:, 0], mapped[:, 1]
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    du, dv = (u - u0)[:, None], (v - v0)[:, None]
    read = (
        image[v0, u0] * (1 - du) * (1 - dv)
        + image[v0, u0 + 1] * du * (1 - dv)
        + image[v0 + 1, u0] * (1 - du) * dv
        + image[v0 + 1, u0 + 1] * du * dv
    )
    # half a crop pixel off would read 1.5 levels off
    assert np.abs(read[:, 0] - 4 * points[:, 0]).max() < 0.75
    assert np.abs(read[:, 1] - 4 * points[:, 1]).max() < 0.75


def test_every_landmark_is_inside_its_crop() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        points = rng.uniform(0, 300, size=(68, 2)) * rng.uniform(0.1, 1.0, size=2) + rng.uniform(-50, 50, size=2)
        box = face_box(points)
        assert box is not None
        mapped = points_in_crop(points, box, 256)
        assert (mapped >= -0.5).all() and (mapped < 255.5).all()


def test_padding_outside_the_frame_is_black_and_marked() -> None:
    frame = np.full((100, 100, 3), 200, dtype=np.uint8)
    box = CropBox(x0=-10, y0=0, side=40)  # its first 10 columns lie left of the frame

    image = crop_face(frame, box, 40)
    inside = inside_frame(box, 100, 100, 40)

    assert box.outside_fraction(100, 100) == pytest.approx(0.25)
    assert not inside[:, :10].any() and inside[:, 10:].all()
    assert (image[:, :9] == 0).all() and (image[:, 11:] == 200).all()
    assert CropBox(x0=10, y0=10, side=50).outside_fraction(100, 100) == 0.0
