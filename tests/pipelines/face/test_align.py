"""Aligned face crops and paste-back (`pipelines.th.face.align`), on synthetic faces placed with known similarities."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.th.face import align, ibug

FRAME = 512


def template() -> np.ndarray:
    """A frontal 68-point face in *face units*: eye centres 1 apart at (-0.5, 0) and (0.5, 0), y down, mouth
    corners 1.05 below the eyes, chin 1.65 below them (adult proportions)."""
    points = np.zeros((68, 2))
    t = np.linspace(0.0, math.pi, 17)
    points[ibug.JAW] = np.stack([-1.05 * np.cos(t), 0.1 + 1.55 * np.sin(t)], axis=1)
    brow_x = np.linspace(-0.95, -0.2, 5)
    points[ibug.RIGHT_BROW] = np.stack([brow_x, -0.3 - 0.08 * np.sin(np.linspace(0, math.pi, 5))], axis=1)
    points[ibug.LEFT_BROW] = points[ibug.RIGHT_BROW][::-1] * [-1, 1]
    points[ibug.NOSE_BRIDGE] = np.stack([np.zeros(4), [-0.05, 0.15, 0.35, 0.55]], axis=1)
    points[ibug.NOSE_LOWER] = np.stack([np.linspace(-0.2, 0.2, 5), [0.62, 0.65, 0.66, 0.65, 0.62]], axis=1)
    # each eye: outer corner, two upper points, inner corner, two lower points (iBUG order), centred on its centre
    eye = np.array([[-0.225, 0.0], [-0.075, -0.06], [0.075, -0.06], [0.225, 0.0], [0.075, 0.06], [-0.075, 0.06]])
    points[ibug.RIGHT_EYE] = eye + [-0.5, 0.0]
    points[ibug.LEFT_EYE] = eye[[3, 2, 1, 0, 5, 4]] * [-1, 1] + [0.5, 0.0]
    outer = np.linspace(0, 2 * math.pi, 13)[:12]
    points[ibug.OUTER_LIPS] = np.stack([-0.42 * np.cos(outer), 1.05 - 0.14 * np.sin(outer)], axis=1)
    inner = np.linspace(0, 2 * math.pi, 9)[:8]
    points[ibug.INNER_LIPS] = np.stack([-0.3 * np.cos(inner), 1.05 - 0.05 * np.sin(inner)], axis=1)
    return points


TEMPLATE = template()
EYE_TO_MOUTH = 1.05
# Where the documented rule puts this face in the unit crop: centred 0.1 eye-to-mouth below the eyes, side
# 1.25 * 2 * max(2 * eye distance, 1.8 * eye-to-mouth) = 5 face units.
CANONICAL = (TEMPLATE - [0.0, 0.1 * EYE_TO_MOUTH]) / 5.0 + 0.5
# The points the test frames mark with coloured discs: eye centres (red, green) and mouth corners (blue, yellow).
MARKS = {
    (255, 0, 0): np.array([-0.5, 0.0]),
    (0, 255, 0): np.array([0.5, 0.0]),
    (0, 0, 255): TEMPLATE[ibug.MOUTH_RIGHT],
    (255, 255, 0): TEMPLATE[ibug.MOUTH_LEFT],
}


def place(points: np.ndarray, scale: float, angle_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """Face units -> frame pixels: rotate by `angle_deg` (clockwise on screen), scale, move the mid-eyes to `centre`."""
    angle = math.radians(angle_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    placed: np.ndarray = np.asarray(points) @ rotation.T * scale + np.asarray(centre)
    return placed


def texture(seed: int = 0, size: int = FRAME) -> np.ndarray:
    """A smooth random RGB image: detail a crop must carry, without single-pixel noise bilinear cannot follow."""
    noise = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 4).astype(np.float64)
    return np.clip((blurred - 128) * 6 + 128, 0, 255).astype(np.uint8)


def marked_frame(scale: float, angle_deg: float, centre: tuple[float, float]) -> np.ndarray:
    frame = np.full((FRAME, FRAME, 3), 40, np.uint8)
    for colour, point in MARKS.items():
        x, y = place(point[None], scale, angle_deg, centre)[0] * 16
        cv2.circle(frame, (round(x), round(y)), round(0.08 * scale * 16), colour, -1, cv2.LINE_AA, shift=4)
    return frame


def mark_positions(image: np.ndarray) -> dict[tuple[int, int, int], np.ndarray]:
    """The centroid (x, y) in pixels of each coloured disc in `image`."""
    rgb = image.astype(np.float64)
    found = {}
    for colour in MARKS:
        on = np.array(colour) > 0
        weight = np.clip(rgb[..., on].min(axis=2) - np.maximum(rgb[..., ~on].max(axis=2, initial=40), 40), 0, None)
        ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
        found[colour] = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    return found


def one(points: np.ndarray) -> np.ndarray:
    """The unit transform of a single face, unsmoothed."""
    transforms = align.estimate_transforms(points[None], np.array([True]), 25.0, smooth=False)
    return np.asarray(transforms[0])


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    moved: np.ndarray = np.asarray(points) @ transform[:, :2].T + transform[:, 2]
    return moved


@pytest.mark.parametrize("angle_deg", [0.0, 25.0, -40.0])
def test_the_face_lands_on_the_canonical_positions_whatever_its_place_size_and_tilt(angle_deg: float) -> None:
    points = place(TEMPLATE, 55.0, angle_deg, (240.0, 260.0))
    unit = one(points)
    np.testing.assert_allclose(apply(unit, points), CANONICAL, atol=1e-9)


@pytest.mark.parametrize("size", [256, 512])
@pytest.mark.parametrize("angle_deg", [0.0, 30.0])
def test_the_crop_shows_eyes_and_mouth_where_the_rule_puts_them_upright(size: int, angle_deg: float) -> None:
    scale, centre = 60.0, (250.0, 230.0)
    frame = marked_frame(scale, angle_deg, centre)
    unit = one(place(TEMPLATE, scale, angle_deg, centre))

    image = align.crop(frame, unit, size)

    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    found = mark_positions(image)
    for colour, point in MARKS.items():
        expected = ((point - [0.0, 0.1 * EYE_TO_MOUTH]) / 5.0 + 0.5) * size - 0.5
        np.testing.assert_allclose(found[colour], expected, atol=0.01 * size, err_msg=f"mark {colour}")
    right_eye, left_eye = found[(255, 0, 0)], found[(0, 255, 0)]
    assert abs(right_eye[1] - left_eye[1]) < 0.004 * size, "the eyes must be level in the crop"
    assert right_eye[0] < left_eye[0], "the subject's right eye must be on the crop's left (not mirrored)"


def test_the_whole_head_fits_with_a_margin() -> None:
    unit = one(place(TEMPLATE, 50.0, 0.0, (256.0, 256.0)))
    face = apply(unit, place(TEMPLATE, 50.0, 0.0, (256.0, 256.0)))
    assert face.min() > 0.2 and face.max() < 0.85, "every landmark well inside the crop"
    # An adult's crown is about 1.9 eye distances above the eyes; hair adds a little.
    crown = apply(unit, place(np.array([[0.0, -1.9]]), 50.0, 0.0, (256.0, 256.0)))[0]
    assert crown[1] > 0.07
    width = face[:, 0].max() - face[:, 0].min()
    assert 0.35 < width < 0.5, "a VoxCeleb-like framing: the face from ear to ear is under half the crop"


def test_256_and_512_crops_show_the_same_region() -> None:
    frame = texture(1)
    unit = one(place(TEMPLATE, 60.0, 12.0, (256.0, 250.0)))
    pixel_256, pixel_512 = align.transform_for_size(unit, 256), align.transform_for_size(unit, 512)
    probe_points = np.random.default_rng(2).uniform(0, FRAME, (50, 2))
    np.testing.assert_allclose(
        (apply(pixel_256, probe_points) + 0.5) / 256, (apply(pixel_512, probe_points) + 0.5) / 512, atol=1e-12
    )
    np.testing.assert_allclose((apply(pixel_512, probe_points) + 0.5) / 512, apply(unit, probe_points), atol=1e-12)

    small, large = align.crop(frame, unit, 256), align.crop(frame, unit, 512)
    shrunk = cv2.resize(large, (256, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(np.int16) - small).mean() < 3.0

    batch = align.transform_for_size(np.stack([unit, unit]), 512)
    np.testing.assert_array_equal(batch[1], pixel_512)


@pytest.mark.parametrize("size", [256, 512])
def test_pasting_an_unchanged_crop_back_restores_the_face_and_leaves_the_rest_untouched(size: int) -> None:
    frame = texture(3)
    unit = one(place(TEMPLATE, 60.0, 20.0, (260.0, 250.0)))

    restored = align.paste_back(frame, align.crop(frame, unit, size), unit)

    coords = unit_coordinates(unit)
    outside = ~np.all((coords >= 0) & (coords <= 1), axis=2)
    np.testing.assert_array_equal(restored[outside], frame[outside])
    inner = np.all((coords > 0.1) & (coords < 0.9), axis=2)
    error = np.abs(restored[inner].astype(np.int16) - frame[inner])
    # two bilinear resamplings blur a little; through a 256 crop the frame also loses its finest detail
    assert error.mean() < (1.5 if size == 512 else 4.0)
    assert outside.sum() > 0.3 * outside.size and inner.sum() > 0.15 * inner.size, "the test covers both regions"


def test_paste_back_blends_through_a_soft_edge_and_nowhere_else() -> None:
    frame = np.zeros((FRAME, FRAME, 3), np.uint8)
    unit = one(place(TEMPLATE, 50.0, -15.0, (250.0, 270.0)))
    white = np.full((256, 256, 3), 255, np.uint8)

    pasted = align.paste_back(frame, white, unit, feather=0.1)

    coords = unit_coordinates(unit)
    inside = np.all((coords >= 0) & (coords <= 1), axis=2)
    assert not pasted[~inside].any(), "nothing may change outside the crop's footprint"
    assert (pasted[np.all((coords > 0.11) & (coords < 0.89), axis=2)] == 255).all()
    edge_distance = np.minimum(coords, 1 - coords).min(axis=2)
    ramp = pasted[..., 0][inside & (edge_distance > 0.01) & (edge_distance < 0.09)]
    assert ramp.min() < 60 and ramp.max() > 195 and np.isin(ramp, (0, 255)).mean() < 0.2, "a soft, graded edge"
    assert not frame.any(), "the input frame is not modified"

    hard = align.paste_back(frame, white, unit, feather=0.0)
    assert (hard[np.all((coords > 0.01) & (coords < 0.99), axis=2)] == 255).all()


def test_smoothing_removes_landmark_jitter_but_follows_the_head() -> None:
    fps, count = 25.0, 150
    time = np.arange(count) / fps
    rng = np.random.default_rng(4)
    centres = np.stack([256 + 40 * np.sin(2 * math.pi * 0.3 * time), 250 + 15 * np.sin(2 * math.pi * 0.2 * time)], 1)
    angles = 8 * np.sin(2 * math.pi * 0.25 * time)
    truth = np.stack([place(TEMPLATE, 55.0, a, (x, y)) for a, (x, y) in zip(angles, centres, strict=True)])
    noisy = truth + rng.normal(0.0, 1.5, truth.shape)
    found = np.ones(count, bool)

    exact = align.estimate_transforms(truth, found, fps, smooth=False)
    raw = align.estimate_transforms(noisy, found, fps, smooth=False)
    smoothed = align.estimate_transforms(noisy, found, fps, smooth=True)

    def corners(transforms: np.ndarray) -> np.ndarray:
        """(N, 4, 2) frame pixels of each crop's corners: what a viewer sees jitter in."""
        square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        return np.stack([apply(align.invert(t), square) for t in transforms])

    def jitter(transforms: np.ndarray) -> float:
        return float(np.sqrt((np.diff(corners(transforms), 2, axis=0) ** 2).mean()))

    def error(transforms: np.ndarray) -> float:
        return float(np.sqrt(((corners(transforms) - corners(exact)) ** 2).mean()))

    assert jitter(smoothed) < 0.1 * jitter(raw)
    assert error(smoothed) < 0.5 * error(raw), "smoothed crops must follow the true head motion more closely"


def test_frames_without_a_face_borrow_the_nearest_found_frame() -> None:
    count = 30
    points = np.stack([place(TEMPLATE, 50.0 + i, 0.0, (200.0 + 3 * i, 250.0)) for i in range(count)])
    found = np.ones(count, bool)
    found[:4] = found[10:20] = found[27:] = False
    points[~found] = np.nan

    transforms = align.estimate_transforms(points, found, 25.0, smooth=False)

    for frame, source in [(0, 4), (3, 4), (12, 9), (14, 9), (15, 20), (17, 20), (29, 26)]:
        np.testing.assert_array_equal(transforms[frame], transforms[source], err_msg=f"frame {frame}")
    assert np.isfinite(align.estimate_transforms(points, found, 25.0, smooth=True)).all()


def test_a_video_without_any_face_is_bad_input() -> None:
    points = np.full((12, 68, 2), np.nan)
    with pytest.raises(BadInput, match="no face was found in any of the 12 frames of 'talk.mp4'"):
        align.estimate_transforms(points, np.zeros(12, bool), 25.0, source="'talk.mp4'")


def test_an_upside_down_face_jittering_across_180_degrees_keeps_its_size_and_turn() -> None:
    angles = np.where(np.arange(20) % 2 == 0, 179.0, -179.0)
    points = np.stack([place(TEMPLATE, 50.0, a, (256.0, 256.0)) for a in angles])
    transforms = align.estimate_transforms(points, np.ones(20, bool), 25.0, smooth=True)
    expected = one(place(TEMPLATE, 50.0, 180.0, (256.0, 256.0)))
    np.testing.assert_allclose(transforms[10], expected, atol=2e-4)


def test_a_strongly_shrunk_crop_does_not_alias_fine_detail() -> None:
    stripes = np.zeros((FRAME, FRAME, 3), np.uint8)
    stripes[::2] = 255  # one-pixel lines: any bilinear shrink by 4 turns them into moire
    unit = one(place(TEMPLATE, 100.0, 7.0, (256.0, 256.0)))  # a 500 px crop side
    small = align.crop(stripes, unit, 128).astype(np.float64)
    inner = small[16:-16, 16:-16]
    assert abs(inner.mean() - 127.5) < 6 and inner.std() < 6


def test_transforms_survive_a_save_and_load_and_the_file_is_reproducible(tmp_path: Path) -> None:
    count = 7
    points = np.stack([place(TEMPLATE, 50.0, 2.0 * i, (250.0 + i, 256.0)) for i in range(count)])
    found = np.array([True, True, False, True, True, True, False])
    transforms = align.estimate_transforms(points, found, 25.0)

    first, second = tmp_path / "a" / "video_transforms.npz", tmp_path / "video_transforms.npz"
    align.save_transforms(first, transforms, found, (640, 480), 25.0)
    align.save_transforms(second, transforms, found, (640, 480), 25.0)
    loaded = align.load_transforms(first)

    np.testing.assert_array_equal(loaded.unit, transforms)
    np.testing.assert_array_equal(loaded.found, found)
    assert (loaded.frame_size, loaded.fps, len(loaded)) == ((640, 480), 25.0, count)
    assert loaded.rule == align.ALIGNMENT_RULE
    np.testing.assert_array_equal(loaded.for_size(384), align.transform_for_size(transforms, 384))
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}, "no time stamps"
    assert sorted(p.name for p in first.parent.iterdir()) == ["video_transforms.npz"], "no temporary file left"


def test_an_unreadable_or_newer_transforms_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    garbage = tmp_path / "video_transforms.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(BadInput, match="video_transforms.npz"):
        align.load_transforms(garbage)
    with pytest.raises(BadInput, match="missing.npz"):
        align.load_transforms(tmp_path / "missing.npz")

    newer = tmp_path / "newer.npz"
    np.savez(newer, format_version=np.int64(align.FORMAT_VERSION + 1))
    with pytest.raises(BadInput, match="newer.npz has crop transforms format 2.*preprocess again"):
        align.load_transforms(newer)


def unit_coordinates(unit: np.ndarray) -> np.ndarray:
    """(H, W, 2) unit crop coordinates of every frame pixel."""
    ys, xs = np.mgrid[0:FRAME, 0:FRAME].astype(np.float64)
    coords: np.ndarray = np.stack([xs, ys], axis=2) @ unit[:, :2].T + unit[:, 2]
    return coords
