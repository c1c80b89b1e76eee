"""Following the twin's face: which face is the main one, through gaps, other faces and swaps."""

from __future__ import annotations

import numpy as np

from pipelines.th.face.tracking import MAX_GAP_FRAMES, track_main_face
from pipelines.th.face.types import FaceDetection, FrameFaces, box_of

FRAME = (640, 480)
_TEMPLATE = np.random.default_rng(7).uniform(-0.5, 0.5, (68, 2))
_TEMPLATE[0], _TEMPLATE[1] = (-0.5, -0.5), (0.5, 0.5)  # the points span exactly one unit square


def face(cx: float, cy: float, height: float = 120.0, confidence: float = 0.9) -> FaceDetection:
    """A square face of `height` px centred on (cx, cy)."""
    points = (np.array([cx, cy]) + _TEMPLATE * height).astype(np.float32)
    return FaceDetection(points=points, confidence=confidence, box=box_of(points))


def centres_x(track_boxes: np.ndarray) -> np.ndarray:
    return np.asarray((track_boxes[:, 0] + track_boxes[:, 2]) / 2)


def test_one_face_moving_is_followed_through_short_gaps() -> None:
    frames: list[FrameFaces] = [[face(300 + 2 * i, 240)] for i in range(60)]
    for gap in (20, 21, 22):
        frames[gap] = []

    track = track_main_face(frames, FRAME)

    expected = np.ones(60, dtype=bool)
    expected[[20, 21, 22]] = False
    assert track.found.tolist() == expected.tolist()
    np.testing.assert_array_equal(track.points[5], frames[5][0].points)
    assert np.isnan(track.points[21]).all() and np.isnan(track.boxes[21]).all() and track.confidence[21] == 0
    assert np.allclose(track.confidence[expected], 0.9)
    assert not track.switches.any()
    assert track.faces_count.tolist() == [0 if i in (20, 21, 22) else 1 for i in range(60)]
    assert (track.rival_ratio == 0).all()


def test_the_main_face_is_the_large_central_one_and_the_small_one_is_a_minor_rival() -> None:
    frames: list[FrameFaces] = [[face(60, 60, height=40), face(320, 240, height=160)] for _ in range(30)]

    track = track_main_face(frames, FRAME)

    assert track.found.all()
    assert np.allclose(centres_x(track.boxes), 320)
    assert track.faces_count.tolist() == [2] * 30
    np.testing.assert_allclose(track.rival_ratio, (40 / 160) ** 2, rtol=1e-3)


def test_a_larger_face_seen_in_two_frames_does_not_become_the_main_face() -> None:
    """Chosen over the first frames, not the first frame: a passer-by close to the lens in frames 0-1 loses."""
    frames: list[FrameFaces] = [[face(330, 250, height=120)] for _ in range(40)]
    frames[0] = [face(120, 200, height=240), *frames[0]]
    frames[1] = [face(125, 200, height=240), *frames[1]]

    track = track_main_face(frames, FRAME)

    assert track.found.all()
    assert np.allclose(centres_x(track.boxes), 330)
    np.testing.assert_allclose(track.rival_ratio[:2], 4.0, rtol=1e-3)
    assert (track.rival_ratio[2:] == 0).all()
    assert not track.switches.any()


def test_two_faces_listed_in_changing_order_do_not_make_the_track_flip() -> None:
    rng = np.random.default_rng(0)
    frames: list[FrameFaces] = []
    for i in range(50):
        pair = [face(200 + i, 240, height=130), face(450 - i, 240, height=120)]
        frames.append(pair if rng.random() < 0.5 else pair[::-1])

    track = track_main_face(frames, FRAME)

    np.testing.assert_allclose(centres_x(track.boxes), 200 + np.arange(50), atol=1e-3)
    assert not track.switches.any()
    np.testing.assert_allclose(track.rival_ratio, (120 / 130) ** 2, rtol=1e-3)


def test_a_face_reappearing_elsewhere_after_a_long_loss_is_reacquired_and_counted() -> None:
    absent = MAX_GAP_FRAMES + 8
    frames: list[FrameFaces] = [[face(150, 240)] for _ in range(30)]
    frames += [[] for _ in range(absent)]
    frames += [[face(500, 240)] for _ in range(30)]

    track = track_main_face(frames, FRAME)

    assert track.found.sum() == 60
    assert np.flatnonzero(track.switches).tolist() == [30 + absent]
    assert np.allclose(centres_x(track.boxes[30 + absent :]), 500)


def test_the_same_face_back_in_the_same_place_after_a_long_loss_is_no_switch() -> None:
    frames: list[FrameFaces] = [[face(300, 240)] for _ in range(30)]
    frames += [[] for _ in range(MAX_GAP_FRAMES * 3)]
    frames += [[face(305, 242)] for _ in range(30)]

    track = track_main_face(frames, FRAME)

    assert track.found.sum() == 60
    assert not track.switches.any()


def test_when_the_twin_leaves_and_the_other_person_stays_the_track_swaps_and_says_so() -> None:
    frames: list[FrameFaces] = [[face(320, 240, height=150), face(560, 240, height=110)] for _ in range(40)]
    frames += [[face(560, 240, height=110)] for _ in range(40)]

    track = track_main_face(frames, FRAME)

    assert track.found.all()
    assert np.allclose(centres_x(track.boxes[:40]), 320)
    assert np.allclose(centres_x(track.boxes[40:]), 560)
    assert np.flatnonzero(track.switches).tolist() == [40]
    assert (track.rival_ratio[:40] > 0.5).all() and (track.rival_ratio[40:] == 0).all()


def test_a_short_loss_while_another_face_is_in_view_keeps_the_main_face() -> None:
    frames: list[FrameFaces] = [[face(320, 240, height=150), face(560, 240, height=110)] for _ in range(40)]
    for index in range(15, 18):
        frames[index] = [face(560, 240, height=110)]

    track = track_main_face(frames, FRAME)

    assert track.found.tolist() == [index not in (15, 16, 17) for index in range(40)]
    assert np.allclose(centres_x(track.boxes[track.found]), 320)
    assert not track.switches.any()


def test_no_face_at_all_gives_an_empty_track() -> None:
    track = track_main_face([[] for _ in range(10)], FRAME)

    assert not track.found.any()
    assert np.isnan(track.points).all() and np.isnan(track.boxes).all()
    assert (track.confidence == 0).all() and (track.faces_count == 0).all() and (track.rival_ratio == 0).all()
    assert track.points.shape == (10, 68, 2) and track.points.dtype == np.float32


def test_a_broken_detection_is_counted_but_never_followed() -> None:
    broken_points = np.full((68, 2), np.nan, dtype=np.float32)
    broken = FaceDetection(points=broken_points, confidence=0.9, box=(0.0, 0.0, 600.0, 400.0))
    frames: list[FrameFaces] = [[broken, face(320, 240)] for _ in range(5)]

    track = track_main_face(frames, FRAME)

    assert track.found.all() and np.isfinite(track.points).all()
    assert track.faces_count.tolist() == [2] * 5
    assert (track.rival_ratio == 0).all()


def test_a_single_photo_is_a_track_of_one_frame() -> None:
    track = track_main_face([[face(100, 100, height=60), face(320, 240, height=200)]], FRAME)

    assert track.found.tolist() == [True]
    assert np.allclose(centres_x(track.boxes), 320)
    assert not track.switches.any()
