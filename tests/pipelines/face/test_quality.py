"""The quality report: per-frame decisions, the summary, and the one sentence that fails an unusable input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.th.face.quality import FrameMeasures, QualityReport, QualityThresholds, assess
from pipelines.th.face.tracking import FaceTrack, track_main_face
from pipelines.th.face.types import FaceDetection, box_of

SOURCE = "video/video.mp4"
DEFAULTS = QualityThresholds()


def healthy(frames: int = 200, face_px: float = 200.0) -> tuple[FaceTrack, FrameMeasures]:
    """A track of one well-filmed face in every frame, and its measures."""
    rng = np.random.default_rng(0)
    boxes = np.tile(np.array([220.0, 140.0, 220.0 + face_px, 140.0 + face_px], dtype=np.float32), (frames, 1))
    points = (boxes[:, None, :2] + rng.uniform(0, face_px, (frames, 68, 2))).astype(np.float32)
    track = FaceTrack(
        points=points,
        confidence=np.full(frames, 0.95, dtype=np.float32),
        boxes=boxes,
        faces_count=np.ones(frames, dtype=np.int64),
        rival_ratio=np.zeros(frames, dtype=np.float32),
        switches=np.zeros(frames, dtype=bool),
    )
    measures = FrameMeasures(
        face_px=np.full(frames, face_px, dtype=np.float32),
        yaw=rng.uniform(-10, 10, frames).astype(np.float32),
        pitch=rng.uniform(-8, 8, frames).astype(np.float32),
        roll=rng.uniform(-5, 5, frames).astype(np.float32),
        blur=rng.uniform(8, 12, frames).astype(np.float32),
    )
    return track, measures


def lose_face(track: FaceTrack, measures: FrameMeasures, frames: slice | list[int] | np.ndarray) -> None:
    """Make `frames` faceless, as the tracker and the stage would leave them."""
    track.points[frames] = np.nan
    track.boxes[frames] = np.nan
    track.confidence[frames] = 0
    track.faces_count[frames] = 0
    for values in (measures.face_px, measures.yaw, measures.pitch, measures.roll, measures.blur):
        values[frames] = np.nan


def judge(track: FaceTrack, measures: FrameMeasures, **overrides: float) -> QualityReport:
    return assess(track, measures, QualityThresholds.from_params(overrides), fps=25.0, source=SOURCE)


def test_a_healthy_video_passes_with_every_frame_usable() -> None:
    report = judge(*healthy())

    assert report.failure is None
    assert report.usable.all() and (report.reasons == "ok").all()
    summary = report.summary
    assert summary["frames"] == 200 and summary["frames_with_face"] == 200
    assert summary["found_ratio"] == 1.0 and summary["usable_ratio"] == 1.0 and summary["frames_dropped"] == 0
    assert summary["face_px_min"] == summary["face_px_median"] == summary["face_px_max"] == 200.0
    assert -10 <= summary["yaw_min"] < summary["yaw_max"] <= 10
    assert summary["duration_s"] == 8.0
    assert summary["reasons"] == {"ok": 200, "no_face": 0, "rival_face": 0, "face_too_small": 0,
                                  "low_confidence": 0, "turned_away": 0, "blurred": 0}  # fmt: skip


def test_each_frame_gets_its_reason_and_the_most_fundamental_one_wins() -> None:
    track, measures = healthy(frames=10)
    lose_face(track, measures, [0])
    track.rival_ratio[1] = 0.8
    measures.face_px[2] = 50
    track.confidence[3] = 0.1
    measures.yaw[4] = 70
    measures.pitch[5] = -40
    measures.blur[6] = 1.0
    # frame 7 is small, doubtful, turned away and blurred at once: size is the cause to report
    measures.face_px[7], track.confidence[7], measures.yaw[7], measures.blur[7] = 40, 0.1, 80, 1.0
    # frame 8: a second face too small to count as another person
    track.rival_ratio[8] = 0.1
    # frame 9: the pose could not be measured; that alone rejects nothing
    measures.yaw[9] = measures.pitch[9] = np.nan

    report = judge(track, measures)

    assert report.reasons.tolist() == [
        "no_face", "rival_face", "face_too_small", "low_confidence", "turned_away", "turned_away", "blurred",
        "face_too_small", "ok", "ok",
    ]  # fmt: skip
    assert report.usable.tolist() == [False] * 8 + [True] * 2


def test_a_video_without_the_face_fails_with_the_count_and_the_fix() -> None:
    track, measures = healthy()
    lose_face(track, measures, np.arange(3, 200))

    report = judge(track, measures)

    assert report.failure == (
        "video/video.mp4: a face was found in only 3 of 200 frames (1 %; at least 90 % needed): "
        "upload a video in which the person's face is visible throughout"
    )
    assert report.summary["face_px_median"] == 200.0 and report.summary["found_ratio"] == 0.015


def test_a_video_without_any_face_has_no_numbers_to_make_up() -> None:
    track, measures = healthy(frames=50)
    lose_face(track, measures, slice(None))

    report = judge(track, measures)

    assert report.failure is not None and "in only 0 of 50 frames" in report.failure
    summary = report.to_dict()["summary"]
    assert summary["face_px_median"] is None and summary["yaw_min"] is None and summary["blur_median"] is None


def test_found_ratio_is_never_shown_rounded_up_to_the_minimum() -> None:
    track, measures = healthy(frames=1000)
    lose_face(track, measures, np.arange(101))  # 89.9 %

    failure = judge(track, measures).failure

    assert failure is not None and "899 of 1000 frames (89 %; at least 90 % needed)" in failure


def test_two_people_in_view_fail_the_video() -> None:
    track, measures = healthy()
    track.rival_ratio[:143] = 0.9
    track.faces_count[:143] = 2

    report = judge(track, measures)

    assert report.failure == (
        "video/video.mp4: two faces of similar size are in view in 143 of 200 frames (72 %; at most 20 % allowed): "
        "the twin video must show one person"
    )
    assert report.summary["rival_frames"] == 143 and report.summary["max_faces"] == 2


def test_the_tracked_face_jumping_between_people_fails_the_video() -> None:
    track, measures = healthy()
    track.switches[[50, 100, 150]] = True

    failure = judge(track, measures).failure

    assert failure == (
        "video/video.mp4: the face followed jumped to another face or place 3 times (first at 2.0 s; at most 2 "
        "allowed): the twin video must show one person, in view throughout, in one shot"
    )
    assert judge(track, measures, max_switches=3).failure is None


def test_a_face_too_small_fails_with_its_size() -> None:
    track, measures = healthy(face_px=41.0)

    failure = judge(track, measures).failure

    assert failure == (
        "video/video.mp4: the face is 41 px tall (median over the frames with a face; at least 80 px needed): "
        "film closer or at a higher resolution"
    )


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (lambda t, m: m.yaw.__setitem__(slice(0, 150), 62.0), ["turned away", "yaw 62°", "in 150 frames",
                                                              "facing the camera"]),
        (lambda t, m: m.blur.__setitem__(slice(0, 150), 1.5), ["blurred", "sharpness 1.5", "in focus"]),
        (lambda t, m: t.confidence.__setitem__(slice(0, 150), 0.1), ["doubts the face", "unobstructed"]),
    ],
)
def test_too_few_usable_frames_fail_naming_the_commonest_problem(spoil: object, words: list[str]) -> None:
    track, measures = healthy()
    spoil(track, measures)  # type: ignore[operator]

    report = judge(track, measures)

    assert report.failure is not None
    assert report.failure.startswith("video/video.mp4: only 50 of 200 frames are usable (25 %; at least 50 % needed)")
    for word in words:
        assert word in report.failure
    assert report.summary["usable_ratio"] == 0.25 and report.summary["frames_dropped"] == 150


def test_a_few_bad_frames_are_dropped_without_failing() -> None:
    track, measures = healthy()
    measures.yaw[:40] = 60.0
    lose_face(track, measures, slice(190, 200))

    report = judge(track, measures)

    assert report.failure is None
    assert report.summary["usable_frames"] == 150
    assert report.to_dict()["dropped_runs"] == [
        {"first": 0, "last": 39, "reason": "turned_away"},
        {"first": 190, "last": 199, "reason": "no_face"},
    ]


def test_the_missing_face_is_reported_before_the_second_person() -> None:
    track, measures = healthy()
    lose_face(track, measures, slice(0, 100))
    track.rival_ratio[100:] = 0.9

    failure = judge(track, measures).failure

    assert failure is not None and "a face was found in only 100 of 200 frames" in failure


def test_a_photo_is_judged_as_a_photo() -> None:
    track, measures = healthy(frames=1)
    assert assess(track, measures, DEFAULTS, fps=1.0, source="image/image.png").failure is None

    measures.yaw[0] = -70.0
    report = assess(track, measures, DEFAULTS, fps=1.0, source="image/image.png")
    assert report.failure == (
        "image/image.png: the photo is not usable: the head is turned away (yaw -70°, pitch "
        f"{measures.pitch[0]:.0f}°; at most ±45° and ±30°): upload a photo of the person facing the camera"
    )

    measures.face_px[0] = 60.0
    assert assess(track, measures, DEFAULTS, fps=1.0, source="image/image.png").failure == (
        "image/image.png: the face is 60 px tall (at least 80 px needed): upload a larger photo, or one taken closer"
    )

    lose_face(track, measures, [0])
    report = assess(track, measures, DEFAULTS, fps=1.0, source="image/image.png")
    assert report.failure == (
        "image/image.png: no face was found in the photo: upload a photo in which the person's face is visible"
    )
    assert report.summary["duration_s"] is None and report.reasons.tolist() == ["no_face"]


def test_a_photo_of_two_people_fails() -> None:
    def person(cx: float, height: float) -> FaceDetection:
        points = (np.array([cx, 200.0]) + np.random.default_rng(1).uniform(-0.5, 0.5, (68, 2)) * height)
        return FaceDetection(points=points.astype(np.float32), confidence=0.9, box=box_of(points))

    track = track_main_face([[person(200, 150), person(450, 140)]], (640, 480))
    measures = FrameMeasures(*(np.zeros(1, dtype=np.float32) for _ in range(5)))
    measures.face_px[0], measures.blur[0] = 150.0, 10.0

    failure = assess(track, measures, DEFAULTS, fps=1.0, source="image/image.png").failure

    assert failure == (
        "image/image.png: the photo shows two faces of similar size: the twin photo must show one person alone"
    )


def test_the_report_is_plain_json() -> None:
    track, measures = healthy()
    lose_face(track, measures, slice(0, 10))
    measures.yaw[40:50] = 80.0

    as_dict = judge(track, measures).to_dict()
    text = json.dumps(as_dict, allow_nan=False)

    assert json.loads(text) == as_dict
    assert as_dict["source"] == SOURCE and as_dict["failure"] is None
    assert as_dict["summary"]["found_ratio"] == 0.95 and as_dict["summary"]["reasons"]["turned_away"] == 10
    assert isinstance(as_dict["summary"]["yaw_max"], float) and as_dict["summary"]["yaw_max"] == 80.0


def test_thresholds_take_overrides_by_name() -> None:
    thresholds = QualityThresholds.from_params({"min_face_px": 120, "max_switches": 0, "min_found_ratio": 0.5})

    assert thresholds.min_face_px == 120.0 and thresholds.max_switches == 0 and thresholds.min_found_ratio == 0.5
    assert thresholds.max_abs_yaw_deg == DEFAULTS.max_abs_yaw_deg
    assert QualityThresholds.from_params(thresholds.to_dict()) == thresholds
    assert json.loads(json.dumps(thresholds.to_dict())) == thresholds.to_dict()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_face": 100}, "unknown; valid names: min_found_ratio, min_usable_ratio, min_face_px"),
        ({"min_face_px": "big"}, "min_face_px='big' must be a number"),
        ({"min_face_px": True}, "must be a number"),
        ({"min_face_px": math.nan}, "must be a number"),
        ({"min_blur": -1}, "must be >= 0"),
        ({"min_found_ratio": 90}, "between 0 and 1"),
        ({"max_switches": 1.5}, "whole number"),
        ({"max_abs_yaw_deg": 200}, "between 0 and 180"),
    ],
)
def test_bad_thresholds_are_refused_with_what_is_valid(params: dict[str, object], message: str) -> None:
    with pytest.raises(BadInput, match="quality threshold") as caught:
        QualityThresholds.from_params(params)
    assert message in str(caught.value)


def test_measures_of_the_wrong_length_are_a_bug() -> None:
    track, measures = healthy(frames=5)
    measures.blur = measures.blur[:4]

    with pytest.raises(ValueError, match="blur"):
        assess(track, measures, DEFAULTS, fps=25.0)
