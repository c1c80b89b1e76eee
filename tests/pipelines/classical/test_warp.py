"""The classical warper: piecewise-affine moves of a face crop, inner-mouth fill, and what MediaPipe sees afterwards.

The lip-sync score re-detects the mouth with MediaPipe, so the decisive tests open and close a real mouth (the
astronaut photo that ships in scikit-image) and check the re-detected inner-lip gap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.media.frames import read_frames
from pipelines.media.synthetic import face_photo
from pipelines.th.classical.mouth_shape import MouthModel, inner_gap
from pipelines.th.classical.warp import MEAN_FACE, PiecewiseAffineWarper, ring_points, triangles
from pipelines.th.face.align import (
    crop,
    crop_params,
    estimate_transforms,
    paste_back,
    transform_for_size,
    transforms_from_params,
)
from pipelines.th.face.backends.mediapipe_mesh import MediapipeBackend
from pipelines.th.render import WarpBatch, to_crop_points

SIZE = 256
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Face:
    image: np.ndarray  # the whole photo
    points: np.ndarray  # (68,2) its landmarks, photo pixels
    unit: np.ndarray  # (2,3) photo -> unit crop
    crop: np.ndarray  # (SIZE,SIZE,3)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(to_crop_points(points[None], transform_for_size(self.unit, SIZE)[None])[0])


@pytest.fixture(scope="module")
def backend() -> Iterator[MediapipeBackend]:
    with MediapipeBackend(max_faces=1, video=False) as opened:
        yield opened


def detect(backend: MediapipeBackend, image: np.ndarray) -> np.ndarray:
    faces = backend.detect([image])[0]
    assert len(faces) == 1
    return np.asarray(faces[0].points, dtype=np.float64)


@pytest.fixture(scope="module")
def astronaut(backend: MediapipeBackend) -> Face:
    image = face_photo("astronaut")
    points = detect(backend, image)
    unit = transforms_from_params(crop_params(points[None]))[0]
    return Face(image=image, points=points, unit=unit, crop=crop(image, unit, SIZE))


def warp_one(crop_image: np.ndarray, source: np.ndarray, driving: np.ndarray, size: int = SIZE) -> np.ndarray:
    batch = WarpBatch(
        crops=crop_image[None],
        source_points=np.asarray(source, dtype=np.float32)[None],
        driving_points=np.asarray(driving, dtype=np.float32)[None],
        output_indices=np.zeros(1, dtype=np.int64),
    )
    out = PiecewiseAffineWarper(size).warp(batch)
    assert out.shape == (1, size, size, 3) and out.dtype == np.uint8
    return np.asarray(out[0])


def with_mouth(face: Face, opening: float, width: float = 0.0) -> np.ndarray:
    """(68,2) photo-pixel landmarks: the face's own, with the mouth of `opening` from its MouthModel."""
    model = MouthModel.fit(face.points[None], np.ones(1, dtype=bool))
    mouth = model.mouth_points(face.points[None], np.array([opening]), np.array([width]))[0]
    driving = np.array(face.points, dtype=np.float64, copy=True)
    driving[48:] = mouth
    return driving


def polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.rint(points * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return np.asarray(mask, dtype=bool)


def texture(size: int) -> np.ndarray:
    """A smooth, colourful, non-periodic pattern: every pixel's neighbourhood is distinct."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    channels = [
        np.sin(9 * x + 4 * y) + np.cos(13 * y - 2 * x * x),
        np.sin(7 * y * x + 11 * x) + np.cos(6 * y),
        np.sin(15 * (x - 0.3) ** 2 + 8 * y),
    ]
    return np.asarray(np.clip(np.stack(channels, axis=-1) * 50 + 128, 0, 255), dtype=np.uint8)


# --- geometry ---------------------------------------------------------------------------------------------------


def test_identity_returns_the_crop_unchanged(astronaut: Face) -> None:
    points = astronaut.to_crop(astronaut.points)
    assert np.array_equal(warp_one(astronaut.crop, points, points), astronaut.crop)


def test_moving_only_the_mouth_leaves_eyes_and_forehead_untouched(astronaut: Face) -> None:
    source = astronaut.to_crop(astronaut.points)
    driving = astronaut.to_crop(with_mouth(astronaut, opening=1.0, width=0.5))
    out = warp_one(astronaut.crop, source, driving)
    below_eyes = int(np.ceil(source[36:48, 1].max())) + 1
    assert np.array_equal(out[:below_eyes], astronaut.crop[:below_eyes])
    mouth = polygon_mask(driving[48:60], out.shape[:2])
    assert np.abs(out[mouth].astype(int) - astronaut.crop[mouth]).mean() > 20  # the mouth did change
    # nothing changes outside the fixed ring around the face (the background, hair, neck further down)
    ring = cv2.convexHull(ring_points(source, SIZE).astype(np.float32))[:, 0]
    near = cv2.dilate(polygon_mask(ring, out.shape[:2]).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert near.mean() < 0.6
    assert np.array_equal(out[~near], astronaut.crop[~near])


def test_a_similarity_of_all_landmarks_moves_the_face_pixels_by_it() -> None:
    image = texture(SIZE)
    source = MEAN_FACE * SIZE - 0.5
    matrix = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 6.0, 1.05)
    matrix[:, 2] += np.array([5.0, -3.0])
    driving = source @ matrix[:, :2].T + matrix[:, 2]
    out = warp_one(image, source, driving)
    expected = cv2.warpAffine(image, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # the face's inside: triangles between landmarks only (the ring and border around them stay put)
    face = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for triangle in triangles():
        if (triangle < 68).all():
            cv2.fillConvexPoly(face, np.rint(driving[triangle] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    inside = cv2.erode(face, np.ones((3, 3), np.uint8)).astype(bool)
    assert inside.sum() > 0.1 * SIZE * SIZE
    difference = np.abs(out[inside].astype(int) - expected[inside])
    assert difference.max() <= 3
    assert np.abs(image[inside].astype(int) - expected[inside]).mean() > 5  # the motion was visible
    corners = np.zeros((SIZE, SIZE), dtype=bool)
    corners[:8, :8] = corners[-8:, -8:] = True
    assert np.array_equal(out[corners], image[corners])  # the crop's border never moves


def test_the_triangulation_is_fixed_and_the_inner_mouth_has_its_own_triangles() -> None:
    assert triangles() is triangles()
    inner = [t for t in triangles() if (t >= 60).all() and (t < 68).all()]
    assert len(inner) == 6  # an octagon: the inner-lip polygon is triangulated by its own points only
    # no triangle joins the inner lips to anything but the lips: the mouth opens without dragging the cheeks in
    joined = [t for t in triangles() if ((t >= 60) & (t < 68)).any() and ((t < 48) | (t >= 68)).any()]
    assert not joined


def test_faceless_frames_are_returned_as_they_are_and_wrong_crops_are_refused(astronaut: Face) -> None:
    points = astronaut.to_crop(astronaut.points)
    missing = np.full_like(points, np.nan)
    assert np.array_equal(warp_one(astronaut.crop, missing, points), astronaut.crop)
    with pytest.raises(ValueError, match="crops"):
        warp_one(astronaut.crop[:128, :128], points, points)


# --- what MediaPipe sees ------------------------------------------------------------------------------------------


def rendered(face: Face, driving_photo_points: np.ndarray) -> np.ndarray:
    """The photo with its crop warped to `driving_photo_points` and pasted back, as the render loop does."""
    out = warp_one(face.crop, face.to_crop(face.points), face.to_crop(driving_photo_points))
    return paste_back(face.image, out, face.unit)


@pytest.mark.parametrize("opening", [0.5, 1.0])
def test_an_opened_mouth_is_redetected_open_by_the_driven_amount(
    backend: MediapipeBackend, astronaut: Face, opening: float
) -> None:
    driving = with_mouth(astronaut, opening)
    detected = detect(backend, rendered(astronaut, driving))
    driven, before, found = float(inner_gap(driving)), float(inner_gap(astronaut.points)), float(inner_gap(detected))
    assert driven > before + 1.0  # the photo's smile shows teeth already: the drive opens it further
    assert found == pytest.approx(driven, rel=0.25, abs=1.5)
    assert found - before == pytest.approx(driven - before, rel=0.35, abs=1.5)


def test_a_closed_mouth_is_redetected_closed(backend: MediapipeBackend, astronaut: Face) -> None:
    assert inner_gap(astronaut.points) > 5.0  # her smile parts the lips
    detected = detect(backend, rendered(astronaut, with_mouth(astronaut, 0.0)))
    assert inner_gap(detected) < 1.5


def test_a_closed_source_opened_shows_a_dark_mouth_and_is_redetected_open(
    backend: MediapipeBackend, astronaut: Face
) -> None:
    closed_points = with_mouth(astronaut, 0.0)
    closed = Face(
        image=rendered(astronaut, closed_points),
        points=closed_points,
        unit=astronaut.unit,
        crop=np.array(warp_one(astronaut.crop, astronaut.to_crop(astronaut.points), astronaut.to_crop(closed_points))),
    )
    opened_points = with_mouth(closed, 0.8)
    out = warp_one(closed.crop, closed.to_crop(closed_points), closed.to_crop(opened_points))
    driving = closed.to_crop(opened_points)
    shape = out.shape[:2]
    cavity = cv2.erode(polygon_mask(driving[60:68], shape).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    lips = polygon_mask(driving[48:60], shape) & ~polygon_mask(driving[60:68], shape)
    lips = cv2.erode(lips.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert cavity.sum() > 50 and lips.sum() > 50
    assert np.median(out[cavity] @ LUMA) < 0.6 * np.median(out[lips] @ LUMA)
    assert np.percentile(out[cavity] @ LUMA, 25) < 70  # a dark cavity, with light teeth above it
    detected = detect(backend, paste_back(closed.image, out, closed.unit))
    assert float(inner_gap(detected)) == pytest.approx(float(inner_gap(opened_points)), rel=0.25, abs=1.5)


def test_warp_is_much_faster_than_real_time(astronaut: Face) -> None:
    source = astronaut.to_crop(astronaut.points)
    driving = astronaut.to_crop(with_mouth(astronaut, 0.7, 0.3))
    warper = PiecewiseAffineWarper(SIZE)
    batch = WarpBatch(
        crops=np.repeat(astronaut.crop[None], 8, axis=0),
        source_points=np.repeat(source[None], 8, axis=0),
        driving_points=np.repeat(driving[None], 8, axis=0),
        output_indices=np.arange(8),
    )
    warper.warp(batch)
    start = time.perf_counter()
    warper.warp(batch)
    per_frame = (time.perf_counter() - start) / 8
    assert per_frame < 0.02  # 40 ms a frame is real time at 25 fps; measured ~2-3 ms


@pytest.mark.media
def test_on_a_talking_clip_the_redetected_gap_follows_the_drive_not_the_source(shared_media: Path) -> None:
    """The engine's real situation: the twin talks in its own video; the warp must impose the speech's mouth."""
    frames = np.concatenate(list(read_frames(shared_media / "talking_512.mp4", 50)))[:100]
    with MediapipeBackend(max_faces=1, video=True) as tracker:
        points = np.array([faces[0].points for faces in tracker.detect(list(frames))], dtype=np.float64)
    units = estimate_transforms(points, np.ones(len(points), dtype=bool), 25.0)
    model = MouthModel.fit(points, np.ones(len(points), dtype=bool))
    chosen = np.arange(0, 100, 4)
    opening = np.resize([0.0, 0.3, 0.6, 0.9, 0.45], len(chosen))
    width = np.resize([0.0, 0.3, -0.3], len(chosen))
    driving = points[chosen].copy()
    driving[:, 48:] = model.mouth_points(points[chosen], opening, width)
    pixel = transform_for_size(units[chosen], SIZE)
    batch = WarpBatch(
        crops=np.stack([crop(frames[f], units[f], SIZE) for f in chosen]),
        source_points=to_crop_points(points[chosen], pixel),
        driving_points=to_crop_points(driving, pixel),
        output_indices=np.arange(len(chosen)),
    )
    out = PiecewiseAffineWarper(SIZE).warp(batch)
    with MediapipeBackend(max_faces=1, video=False) as backend:
        pasted = [paste_back(frames[f], warped, units[f]) for f, warped in zip(chosen, out, strict=True)]
        detected = np.array([detect(backend, image) for image in pasted])
    driven, source, found = inner_gap(driving), inner_gap(points[chosen]), inner_gap(detected)
    assert np.corrcoef(driven, source)[0, 1] < 0.5  # the drive is not the clip's own mouth...
    assert np.corrcoef(driven, found)[0, 1] > 0.95  # ... yet the re-detected mouth follows the drive
    assert np.abs(found - driven).mean() < 0.2 * driven.mean()
    closing = (opening == 0) & (source > 10)
    assert closing.sum() >= 2 and np.median(found[closing]) < 3.0  # open frames of the clip, closed by the drive
