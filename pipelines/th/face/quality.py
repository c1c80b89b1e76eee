"""The quality report of the twin's video or photo: which frames are usable, why not, and whether the input as a
whole can make a twin (if not, one sentence that names the input, the problem in numbers and the fix).

Each frame gets the first reason that applies, most fundamental first:

    no_face         no main face in the frame
    rival_face      a second face at least `rival_area_ratio` of the main face's area is in view
    face_too_small  the face box is shorter than `min_face_px`
    low_confidence  the backend doubts its own landmarks
    turned_away     |yaw| or |pitch| beyond the limits
    blurred         sharpness below `min_blur`
    ok              usable

Size comes before confidence, pose and sharpness because a small face also lowers the backend's confidence and
makes the pose and sharpness unreliable, so it is the cause to report; confidence comes before pose and sharpness
for the same reason (doubtful landmarks give a meaningless pose). A measure that could not be taken (NaN) rejects
nothing. The input as a whole fails on, in this order: too few frames with a face, a second person in too many
frames, too many switches of the followed face, a face too small overall, too few usable frames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from pipelines.base import BadInput
from pipelines.th.face.smoothing import found_runs
from pipelines.th.face.tracking import FaceTrack

OK = "ok"
NO_FACE = "no_face"
RIVAL_FACE = "rival_face"
FACE_TOO_SMALL = "face_too_small"
LOW_CONFIDENCE = "low_confidence"
TURNED_AWAY = "turned_away"
BLURRED = "blurred"
REASONS = (OK, NO_FACE, RIVAL_FACE, FACE_TOO_SMALL, LOW_CONFIDENCE, TURNED_AWAY, BLURRED)

MAX_LISTED_RUNS = 100
"""The report lists at most this many runs of dropped frames (a flickering detector could make thousands)."""

_RATIOS = ("min_found_ratio", "min_usable_ratio", "max_rival_frames_ratio", "min_confidence")


@dataclass(frozen=True)
class QualityThresholds:
    """What makes a frame usable and an input acceptable. Override any of them with the stage's `quality` param.

    min_found_ratio         fraction of frames that must show the main face (0..1)
    min_usable_ratio        fraction of frames that must be usable (0..1)
    min_face_px             face box height, px, below which a frame is unusable; the input fails when the median
                            face is smaller (a twin trained on a tiny face looks blurred at any size)
    min_confidence          the backend's confidence below which a frame is unusable (0..1). Kept low because
                            backends' confidences differ in meaning (MediaPipe's never fall below 0.5 for a face it
                            returns, FAN's are heatmap peaks): it only drops frames a backend itself flags
    max_abs_yaw_deg         head turned left or right further than this: unusable (the far side of the face hidden)
    max_abs_pitch_deg       head tilted up or down further than this: unusable. Not tighter, because the measured
                            pitch of a person looking into the camera can be 10-20 degrees off (the generic head
                            model, see `measures.head_pose`)
    min_blur                `measures.blur_score` below which a frame is blurred. Sharp real faces measured
                            7.6-14.9; blurred by a Gaussian of sigma 2 px at 128 px tall (~4 px on a 256 px face),
                            2.6-3.7: 3.5 drops such frames and keeps a slightly soft face
    rival_area_ratio        another face at least this fraction of the main face's area is a second person in view
                            (0.35 ~ 60 % of its height); smaller ones (a photo on the wall, someone far behind) are not
    max_rival_frames_ratio  the input fails when a rival face is in more than this fraction of frames (0..1)
    max_switches            the input fails when the followed face jumps to another face or place more often
    """

    min_found_ratio: float = 0.9
    min_usable_ratio: float = 0.5
    min_face_px: float = 80.0
    min_confidence: float = 0.3
    max_abs_yaw_deg: float = 45.0
    max_abs_pitch_deg: float = 30.0
    min_blur: float = 3.5
    rival_area_ratio: float = 0.2
    max_rival_frames_ratio: float = 0.2
    max_switches: int = 2

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> QualityThresholds:
        """The defaults with `params` ({name: value}) overriding them; BadInput on an unknown name or a bad value."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise BadInput(f"quality thresholds {unknown} are unknown; valid names: {', '.join(names)}")
        values: dict[str, Any] = {}
        for name, value in params.items():
            values[name] = _checked(name, value)
        return cls(**values)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _checked(name: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(f"quality threshold {name}={value!r} must be a number")
    if name == "max_switches":
        if value < 0 or value != int(value):
            raise BadInput(f"quality threshold max_switches={value!r} must be a whole number >= 0")
        return int(value)
    if value < 0:
        raise BadInput(f"quality threshold {name}={value!r} must be >= 0")
    if name in _RATIOS and value > 1:
        raise BadInput(f"quality threshold {name}={value!r} is a fraction and must be between 0 and 1")
    if name in ("max_abs_yaw_deg", "max_abs_pitch_deg") and value > 180:
        raise BadInput(f"quality threshold {name}={value!r} must be an angle between 0 and 180 degrees")
    return float(value)


@dataclass(eq=False)
class FrameMeasures:
    """Per-frame measures of the main face, (N,) float arrays, NaN where no face or not measured.

    face_px  face box height, px;  yaw, pitch, roll  degrees (`measures.head_pose`);  blur  `measures.blur_score`
    """

    face_px: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    blur: np.ndarray


@dataclass(eq=False)
class QualityReport:
    """The decision per frame and for the whole input.

    usable   (N,) bool
    reasons  (N,) str, one of REASONS
    summary  numbers for people and dashboards (see `to_dict`)
    failure  None, or why the input cannot make a twin and what to do: the stage raises BadInput with it
    """

    source: str
    usable: np.ndarray
    reasons: np.ndarray
    summary: dict[str, Any]
    failure: str | None

    @property
    def frames(self) -> int:
        return int(self.usable.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain numbers, rounded; None for a value that does not exist) with the runs of
        dropped frames: [{"first", "last", "reason"}...], at most MAX_LISTED_RUNS of them."""
        runs = _dropped_runs(self.reasons)
        return {
            "source": self.source,
            "failure": self.failure,
            "summary": dict(self.summary),
            "dropped_runs": runs[:MAX_LISTED_RUNS],
            "dropped_runs_total": len(runs),
        }


def assess(
    track: FaceTrack,
    measures: FrameMeasures,
    thresholds: QualityThresholds,
    *,
    fps: float,
    source: str = "video/video.mp4",
) -> QualityReport:
    """Judge every frame and the input as a whole. `fps` only dates events in the messages; N = 1 is a photo."""
    count = track.frames
    for name in ("face_px", "yaw", "pitch", "roll", "blur"):
        if np.shape(getattr(measures, name)) != (count,):
            raise ValueError(f"measures.{name} has shape {np.shape(getattr(measures, name))}, the track {count} frames")
    reasons = frame_reasons(track, measures, thresholds)
    usable = reasons == OK
    summary = _summary(track, measures, thresholds, reasons, fps)
    failure = _failure(track, measures, thresholds, reasons, summary, fps, source)
    return QualityReport(source=source, usable=usable, reasons=reasons, summary=summary, failure=failure)


def frame_reasons(track: FaceTrack, measures: FrameMeasures, thresholds: QualityThresholds) -> np.ndarray:
    """(N,) str: why each frame is unusable, or "ok" (first reason that applies, in the module's order)."""
    found = track.found
    face_px = _face_px(track, measures)
    with np.errstate(invalid="ignore"):
        checks = (
            (NO_FACE, ~found),
            (RIVAL_FACE, np.asarray(track.rival_ratio) >= thresholds.rival_area_ratio),
            (FACE_TOO_SMALL, face_px < thresholds.min_face_px),
            (LOW_CONFIDENCE, np.asarray(track.confidence) < thresholds.min_confidence),
            (
                TURNED_AWAY,
                (np.abs(measures.yaw) > thresholds.max_abs_yaw_deg)
                | (np.abs(measures.pitch) > thresholds.max_abs_pitch_deg),
            ),
            (BLURRED, np.asarray(measures.blur) < thresholds.min_blur),
        )
    reasons = np.full(found.shape, OK, dtype="<U16")
    for reason, failed in reversed(checks):  # the earliest check is written last, so it wins
        reasons[np.asarray(failed, dtype=bool)] = reason
    return reasons


def _face_px(track: FaceTrack, measures: FrameMeasures) -> np.ndarray:
    """The measured face height, or the track's box height where the measure is missing."""
    face_px = np.asarray(measures.face_px, dtype=np.float64).copy()
    boxes = np.asarray(track.boxes, dtype=np.float64)
    missing = ~np.isfinite(face_px)
    face_px[missing] = boxes[missing, 3] - boxes[missing, 1]
    return np.asarray(face_px)


def _summary(
    track: FaceTrack, measures: FrameMeasures, thresholds: QualityThresholds, reasons: np.ndarray, fps: float
) -> dict[str, Any]:
    count = track.frames
    found = track.found
    face_px = _face_px(track, measures)[found]
    usable = int(np.count_nonzero(reasons == OK))
    with np.errstate(invalid="ignore"):
        rivals = int(np.count_nonzero(found & (np.asarray(track.rival_ratio) >= thresholds.rival_area_ratio)))
    return {
        "frames": count,
        "fps": _number(fps, 3) if count > 1 else None,
        "duration_s": _number(count / fps, 3) if count > 1 and fps > 0 else None,
        "frames_with_face": int(np.count_nonzero(found)),
        "found_ratio": _ratio(int(np.count_nonzero(found)), count),
        "usable_frames": usable,
        "usable_ratio": _ratio(usable, count),
        "frames_dropped": count - usable,
        "face_px_min": _stat(np.min, face_px, 1),
        "face_px_median": _stat(np.median, face_px, 1),
        "face_px_max": _stat(np.max, face_px, 1),
        "confidence_median": _stat(np.median, np.asarray(track.confidence)[found], 3),
        "yaw_min": _stat(np.min, measures.yaw[found], 1),
        "yaw_max": _stat(np.max, measures.yaw[found], 1),
        "pitch_min": _stat(np.min, measures.pitch[found], 1),
        "pitch_max": _stat(np.max, measures.pitch[found], 1),
        "roll_min": _stat(np.min, measures.roll[found], 1),
        "roll_max": _stat(np.max, measures.roll[found], 1),
        "blur_min": _stat(np.min, measures.blur[found], 2),
        "blur_median": _stat(np.median, measures.blur[found], 2),
        "rival_frames": rivals,
        "switches": int(np.count_nonzero(track.switches)),
        "max_faces": int(np.max(track.faces_count, initial=0)),
        "reasons": {reason: int(np.count_nonzero(reasons == reason)) for reason in REASONS},
    }


def _failure(
    track: FaceTrack,
    measures: FrameMeasures,
    thresholds: QualityThresholds,
    reasons: np.ndarray,
    summary: Mapping[str, Any],
    fps: float,
    source: str,
) -> str | None:
    count = track.frames
    photo = count == 1
    if count == 0:
        return f"{source}: holds no frames: upload a video with the person's face in view"
    found = int(summary["frames_with_face"])
    if found / count < thresholds.min_found_ratio or found == 0:
        if photo:
            return f"{source}: no face was found in the photo: upload a photo in which the person's face is visible"
        return (
            f"{source}: a face was found in only {found} of {count} frames ({_below(found / count)} %; at least "
            f"{_pct(thresholds.min_found_ratio)} % needed): upload a video in which the person's face is visible "
            "throughout"
        )
    rivals = int(summary["rival_frames"])
    if rivals / count > thresholds.max_rival_frames_ratio:
        if photo:
            return f"{source}: the photo shows two faces of similar size: the twin photo must show one person alone"
        return (
            f"{source}: two faces of similar size are in view in {rivals} of {count} frames "
            f"({_above(rivals / count)} %; at most {_pct(thresholds.max_rival_frames_ratio)} % allowed): "
            "the twin video must show one person"
        )
    switches = int(summary["switches"])
    if switches > thresholds.max_switches:
        first = int(np.flatnonzero(track.switches)[0])
        when = f"{first / fps:.1f} s" if fps > 0 else f"frame {first}"
        return (
            f"{source}: the face followed jumped to another face or place {switches} times (first at {when}; at most "
            f"{thresholds.max_switches} allowed): the twin video must show one person, in view throughout, in one shot"
        )
    face_px = _face_px(track, measures)[track.found]
    median_px = float(np.median(face_px)) if face_px.size else math.nan
    if median_px < thresholds.min_face_px:
        fix = "upload a larger photo, or one taken closer" if photo else "film closer or at a higher resolution"
        what = "" if photo else "median over the frames with a face; "
        return (
            f"{source}: the face is {math.floor(median_px):d} px tall ({what}at least {thresholds.min_face_px:g} px "
            f"needed): {fix}"
        )
    usable = int(summary["usable_frames"])
    if usable / count < thresholds.min_usable_ratio or usable == 0:
        return _unusable_failure(measures, thresholds, reasons, source, photo)
    return None


def _unusable_failure(
    measures: FrameMeasures, thresholds: QualityThresholds, reasons: np.ndarray, source: str, photo: bool
) -> str:
    """Too few usable frames: name the most frequent reason, with its numbers and fix."""
    dropped = reasons[reasons != OK]
    names, counts = np.unique(dropped, return_counts=True)
    reason = str(names[int(np.argmax(counts))])
    frames = reasons == reason
    problem, video_fix, photo_fix = {
        NO_FACE: ("the face is out of view", "keep the face in view throughout", "upload a photo showing the face"),
        RIVAL_FACE: (
            "a second face of similar size is in view",
            "film the person alone",
            "crop the photo to the twin's face",
        ),
        FACE_TOO_SMALL: (
            f"the face is under {thresholds.min_face_px:g} px tall",
            "film closer or at a higher resolution",
            "upload a larger photo, or one taken closer",
        ),
        LOW_CONFIDENCE: (
            f"the landmark detector doubts the face (confidence under {thresholds.min_confidence:g})",
            "film the face unobstructed, in even light",
            "upload a photo of the face unobstructed, in even light",
        ),
        TURNED_AWAY: (
            f"the head is turned away (yaw {_span(measures.yaw[frames])}°, pitch {_span(measures.pitch[frames])}°;"
            f" at most ±{thresholds.max_abs_yaw_deg:g}° and ±{thresholds.max_abs_pitch_deg:g}°)",
            "film the person facing the camera",
            "upload a photo of the person facing the camera",
        ),
        BLURRED: (
            f"the face is blurred (sharpness {_span(measures.blur[frames], 1)}, at least {thresholds.min_blur:g})",
            "film in focus, with enough light and a steady camera",
            "upload a sharp photo",
        ),
    }[reason]
    if photo:
        return f"{source}: the photo is not usable: {problem}: {photo_fix}"
    total = reasons.shape[0]
    usable = total - dropped.shape[0]
    return (
        f"{source}: only {usable} of {total} frames are usable ({_below(usable / total)} %; at least "
        f"{_pct(thresholds.min_usable_ratio)} % needed); most often {problem}, in {int(frames.sum())} frames: "
        f"{video_fix}"
    )


def _dropped_runs(reasons: np.ndarray) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for reason in REASONS[1:]:
        for start, stop in found_runs(reasons == reason):
            runs.append({"first": start, "last": stop - 1, "reason": reason})
    return sorted(runs, key=lambda run: int(run["first"]))


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _number(value: float, digits: int) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


def _stat(function: Any, values: np.ndarray, digits: int) -> float | None:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return _number(float(function(finite)), digits) if finite.size else None


def _span(values: np.ndarray, digits: int = 0) -> str:
    """"low to high" of the finite values, for a message."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return "unknown"
    low, high = f"{finite.min():.{digits}f}", f"{finite.max():.{digits}f}"
    return low if low == high else f"{low} to {high}"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g}"


def _below(ratio: float) -> str:
    """A percentage that failed a minimum, rounded down so that it never reads as the minimum itself."""
    return f"{math.floor(ratio * 100):d}"


def _above(ratio: float) -> str:
    """A percentage that failed a maximum, rounded up."""
    return f"{math.ceil(ratio * 100):d}"
