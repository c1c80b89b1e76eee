"""The `landmarks` stage of th preprocess: find, track and judge the twin's face in its video and photo.

Reads the normalised `video/video.mp4` and `image/image.png` (either may be absent, not both), runs a landmark
backend over every frame in batches, follows the main face, smooths its 68 iBUG points (One-Euro), measures each
frame (size, head pose, sharpness) and decides per frame whether it is usable. Writes the landmarks files, the
quality report and a contact sheet. Fails (BadInput) when the quality report says the video or photo cannot make a
twin: no face, two people, a face too small... the reason names the numbers and the fix.

Parameters (job params; all optional):
    landmark_backend   "mediapipe" (default; its model ships in the wheel) or "face_alignment" (FAN; its weights
                       must be in the store under common/th/face_alignment/)
    quality            {threshold name: value} overrides of `face.quality.QualityThresholds`
    smoothing          {"min_cutoff": Hz, "beta": ...} overrides of the One-Euro filter
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipelines.base import BadInput, InputSpec, MissingWeights, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.media.frames import read_frames
from pipelines.media.images import read_rgb
from pipelines.media.probe import probe
from pipelines.th import outputs as files
from pipelines.th.face.backends import BACKENDS, LandmarkBackend, open_backend
from pipelines.th.face.landmarks_file import FaceLandmarks, save_landmarks
from pipelines.th.face.measures import blur_score, head_pose
from pipelines.th.face.pictures import SheetTile, contact_sheet, sample_indices, save_png
from pipelines.th.face.quality import FrameMeasures, QualityReport, QualityThresholds, assess
from pipelines.th.face.smoothing import jitter, smooth_points
from pipelines.th.face.tracking import FaceTrack, track_main_face
from pipelines.th.face.types import FrameFaces

BATCH_FRAMES = 32
SHEET_FRAMES = 10


class LandmarksStage:
    name = "landmarks"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("video", Source.PROCESSED, relative=files.VIDEO_MP4, optional=True),
        InputSpec("image", Source.PROCESSED, relative=files.IMAGE_PNG, optional=True),
        InputSpec("fan_weights", Source.COMMON, relative=files.FAN_WEIGHTS["fan"], optional=True),
        InputSpec("sfd_weights", Source.COMMON, relative=files.FAN_WEIGHTS["sfd"], optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(files.VIDEO_LANDMARKS, optional=True),
        OutputSpec(files.IMAGE_LANDMARKS, optional=True),
        OutputSpec(files.QUALITY_JSON),
        OutputSpec(files.CONTACT_SHEET),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        if not {"video", "image"} & available_inputs:
            return "the twin has no video and no image to find a face in"
        return None

    def run(self, context: StageContext) -> StageResult:
        backend_name = _backend_name(context.params)
        thresholds = QualityThresholds.from_params(_mapping(context.params, "quality"))
        smoothing = _smoothing(context.params)
        weights_dir = _fan_weights_dir(context) if backend_name == "face_alignment" else None
        timing = {"decode": 0.0, "detect": 0.0, "measure": 0.0, "write": 0.0}
        report: dict[str, Any] = {"backend": backend_name, "thresholds": thresholds.to_dict()}
        metrics: dict[str, Any] = {"backend": backend_name}
        written: list[str] = []
        tiles: list[SheetTile] = []
        failures: list[str] = []
        messages: list[str] = []

        if "video" in context.inputs:
            context.progress(0.0, "finding the face in the video")
            video = _analyse_video(
                context, context.inputs["video"], backend_name, weights_dir, thresholds, smoothing, timing
            )
            started = time.perf_counter()
            save_landmarks(context.output_path(files.VIDEO_LANDMARKS), video.landmarks)
            timing["write"] += time.perf_counter() - started
            written.append(files.VIDEO_LANDMARKS)
            report["video"] = video.report.to_dict() | {"jitter": video.jitter}
            metrics["video"] = _headline(video.report) | {"jitter": video.jitter}
            tiles += video.tiles
            if video.report.failure:
                failures.append(video.report.failure)
            messages.append(_summary("video", video.report))

        if "image" in context.inputs:
            context.progress(0.9, "finding the face in the photo")
            image = _analyse_image(context.inputs["image"], backend_name, weights_dir, thresholds, timing)
            started = time.perf_counter()
            save_landmarks(context.output_path(files.IMAGE_LANDMARKS), image.landmarks)
            timing["write"] += time.perf_counter() - started
            written.append(files.IMAGE_LANDMARKS)
            report["image"] = image.report.to_dict()
            metrics["image"] = _headline(image.report)
            tiles += image.tiles
            if image.report.failure:
                failures.append(image.report.failure)
            messages.append(_summary("image", image.report))

        started = time.perf_counter()
        title = "; ".join(messages)
        save_png(context.output_path(files.CONTACT_SHEET), contact_sheet(tiles, columns=5, tile_size=256, title=title))
        written.append(files.CONTACT_SHEET)
        report["timing_s"] = {key: round(value, 3) for key, value in timing.items()}
        context.output_path(files.QUALITY_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        written.append(files.QUALITY_JSON)
        timing["write"] += time.perf_counter() - started
        metrics["timing_s"] = {key: round(value, 3) for key, value in timing.items()}

        if failures:
            raise BadInput("; ".join(failures))
        context.progress(1.0, "face found")
        return StageResult(outputs=written, metrics=metrics, message="; ".join(messages))


class _Analysis:
    def __init__(self, landmarks: FaceLandmarks, report: QualityReport, tiles: list[SheetTile], jitter: Any) -> None:
        self.landmarks, self.report, self.tiles, self.jitter = landmarks, report, tiles, jitter


def _analyse_video(
    context: StageContext,
    path: Path,
    backend_name: str,
    weights_dir: Path | None,
    thresholds: QualityThresholds,
    smoothing: Mapping[str, float],
    timing: dict[str, float],
) -> _Analysis:
    info = probe(path).video
    if info is None:
        raise BadInput(f"{files.VIDEO_MP4} has no video stream: run the twin's preprocess again")
    fps = float(info.fps or 25.0)
    expected = max(1, info.frames or 1)
    faces: list[FrameFaces] = []
    width = height = 0
    with _open(backend_name, weights_dir, video=True) as backend:
        frames = read_frames(path, BATCH_FRAMES, exact_colour=False)
        while True:
            started = time.perf_counter()
            batch = next(frames, None)
            timing["decode"] += time.perf_counter() - started
            if batch is None:
                break
            height, width = batch.shape[1:3]
            started = time.perf_counter()
            faces += backend.detect(list(batch))
            timing["detect"] += time.perf_counter() - started
            context.progress(min(0.8, 0.8 * len(faces) / expected), f"landmarks: {len(faces)} frames")
            context.check_cancelled()
    if not faces:
        raise BadInput(f"{files.VIDEO_MP4} holds no frames: upload a video with at least one frame")

    started = time.perf_counter()
    track = track_main_face(faces, (width, height))
    smoothed = smooth_points(track.points, track.found, fps, **smoothing)
    wanted = set(sample_indices(len(faces), SHEET_FRAMES))
    measures, samples = _measure(path, track, smoothed, wanted, timing)
    timing["measure"] += time.perf_counter() - started
    report = assess(track, measures, thresholds, fps=fps, source=files.VIDEO_MP4)
    scale = _median_finite(measures.face_px)
    jitter_report = {
        "raw_px": _round(jitter(track.points, track.found)),
        "smoothed_px": _round(jitter(smoothed, track.found)),
        "raw_rel": _round(jitter(track.points, track.found, scale=scale)),
        "smoothed_rel": _round(jitter(smoothed, track.found, scale=scale)),
    }
    landmarks = _landmarks_record(track, smoothed, measures, report, fps, width, height, backend_name)
    tiles = [
        _tile(
            samples[index],
            smoothed[index] if track.found[index] else None,
            track.boxes[index],
            f"#{index} {index / fps:.2f}s {report.reasons[index]}",
            bool(report.usable[index]),
        )
        for index in sorted(samples)
    ]
    return _Analysis(landmarks, report, tiles, jitter_report)


def _measure(
    path: Path, track: FaceTrack, smoothed: np.ndarray, wanted: set[int], timing: dict[str, float]
) -> tuple[FrameMeasures, dict[int, np.ndarray]]:
    """Second pass over the frames: head pose and sharpness of the main face, and the contact sheet's frames.

    NOTE: decoding again is cheaper than keeping every frame in memory (decode runs at several hundred fps)."""
    count = track.points.shape[0]
    face_px = np.full(count, np.nan, dtype=np.float32)
    yaw, pitch, roll, blur = (np.full(count, np.nan, dtype=np.float32) for _ in range(4))
    samples: dict[int, np.ndarray] = {}
    index = 0
    for batch in read_frames(path, BATCH_FRAMES, exact_colour=False):
        height, width = batch.shape[1:3]
        for frame in batch:
            if index >= count:
                break
            if index in wanted:
                samples[index] = frame
            if track.found[index]:
                box = track.boxes[index]
                face_px[index] = float(box[3] - box[1])
                yaw[index], pitch[index], roll[index] = head_pose(smoothed[index], (width, height))
                blur[index] = blur_score(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), tuple(float(v) for v in box))
            index += 1
    return FrameMeasures(face_px=face_px, yaw=yaw, pitch=pitch, roll=roll, blur=blur), samples


def _analyse_image(
    path: Path, backend_name: str, weights_dir: Path | None, thresholds: QualityThresholds, timing: dict[str, float]
) -> _Analysis:
    started = time.perf_counter()
    image = read_rgb(path, files.IMAGE_PNG)
    timing["decode"] += time.perf_counter() - started
    started = time.perf_counter()
    with _open(backend_name, weights_dir, video=False) as backend:
        faces = backend.detect([image])
    timing["detect"] += time.perf_counter() - started
    height, width = image.shape[:2]
    track = track_main_face(faces, (width, height))
    measures, _ = _measure_single(image, track)
    report = assess(track, measures, thresholds, fps=1.0, source=files.IMAGE_PNG)
    landmarks = _landmarks_record(track, track.points, measures, report, 0.0, width, height, backend_name)
    found = bool(track.found[0])
    tile = _tile(
        image, track.points[0] if found else None, track.boxes[0], f"photo {report.reasons[0]}", bool(report.usable[0])
    )
    return _Analysis(landmarks, report, [tile], None)


def _tile(frame: np.ndarray, points: np.ndarray | None, box: np.ndarray, label: str, ok: bool) -> SheetTile:
    """A contact-sheet tile zoomed on the face (a square 2.5 face boxes wide), so the points can be judged even
    when the face is small in the frame; the whole frame when there is no face."""
    if points is None or not np.isfinite(box).all():
        return SheetTile(image=frame, points=None, label=label, ok=ok)
    height, width = frame.shape[:2]
    side = int(min(max(height, width), 2.5 * max(box[2] - box[0], box[3] - box[1])))
    side = min(side, height, width)
    x0 = int(np.clip((box[0] + box[2]) / 2 - side / 2, 0, width - side))
    y0 = int(np.clip((box[1] + box[3]) / 2 - side / 2, 0, height - side))
    zoomed = np.ascontiguousarray(frame[y0 : y0 + side, x0 : x0 + side])
    return SheetTile(image=zoomed, points=points - np.array([x0, y0], dtype=points.dtype), label=label, ok=ok)


def _measure_single(image: np.ndarray, track: FaceTrack) -> tuple[FrameMeasures, None]:
    nan = np.full(1, np.nan, dtype=np.float32)
    face_px, yaw, pitch, roll, blur = (nan.copy() for _ in range(5))
    if track.found[0]:
        box = track.boxes[0]
        height, width = image.shape[:2]
        face_px[0] = float(box[3] - box[1])
        yaw[0], pitch[0], roll[0] = head_pose(track.points[0], (width, height))
        blur[0] = blur_score(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), tuple(float(v) for v in box))
    return FrameMeasures(face_px=face_px, yaw=yaw, pitch=pitch, roll=roll, blur=blur), None


def _landmarks_record(
    track: FaceTrack,
    smoothed: np.ndarray,
    measures: FrameMeasures,
    report: QualityReport,
    fps: float,
    width: int,
    height: int,
    backend_name: str,
) -> FaceLandmarks:
    return FaceLandmarks(
        points=np.asarray(smoothed, dtype=np.float32),
        points_raw=np.asarray(track.points, dtype=np.float32),
        confidence=np.asarray(track.confidence, dtype=np.float32),
        boxes=np.asarray(track.boxes, dtype=np.float32),
        usable=np.asarray(report.usable, dtype=bool),
        reasons=np.asarray(report.reasons, dtype="<U24"),
        faces_count=np.asarray(track.faces_count, dtype=np.int16),
        yaw=measures.yaw,
        pitch=measures.pitch,
        roll=measures.roll,
        blur=measures.blur,
        fps=fps,
        width=width,
        height=height,
        backend=backend_name,
    )


def _open(name: str, weights_dir: Path | None, *, video: bool) -> LandmarkBackend:
    return open_backend(name, weights_dir=weights_dir, max_faces=2, video=video)


def _backend_name(params: Mapping[str, Any]) -> str:
    value = params.get("landmark_backend", "mediapipe")
    if value not in BACKENDS:
        raise BadInput(f"parameter landmark_backend={value!r} is unknown; use one of {', '.join(BACKENDS)}")
    return str(value)


def _fan_weights_dir(context: StageContext) -> Path:
    missing = [files.FAN_WEIGHTS[key] for key in ("fan", "sfd") if f"{key}_weights" not in context.inputs]
    if missing:
        raise MissingWeights(
            "the face_alignment landmark backend needs its FAN and S3FD weights, which are not in the store",
            names=tuple(missing),
        )
    return context.inputs["fan_weights"].parent


def _mapping(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = params.get(name, {})
    if not isinstance(value, Mapping):
        raise BadInput(f"parameter {name}={value!r} must be a JSON object of settings, e.g. {name}='{{\"...\": 1}}'")
    return value


def _smoothing(params: Mapping[str, Any]) -> dict[str, float]:
    value = _mapping(params, "smoothing")
    unknown = set(value) - {"min_cutoff", "beta"}
    if unknown:
        raise BadInput(f"parameter smoothing has unknown settings {sorted(unknown)}; known: min_cutoff, beta")
    result: dict[str, float] = {}
    for key, number in value.items():
        low_ok = number > 0 if key == "min_cutoff" else number >= 0
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not low_ok:
            bound = "> 0 (Hz)" if key == "min_cutoff" else ">= 0"
            raise BadInput(f"parameter smoothing.{key}={number!r} must be a number {bound}")
        result[key] = float(number)
    return result


def _headline(report: QualityReport) -> dict[str, Any]:
    summary = report.to_dict()["summary"]
    keys = (
        "frames",
        "found_ratio",
        "usable_ratio",
        "frames_dropped",
        "face_px_median",
        "yaw_min",
        "yaw_max",
        "pitch_min",
        "pitch_max",
        "blur_median",
    )
    return {key: summary[key] for key in keys if key in summary}


def _summary(what: str, report: QualityReport) -> str:
    summary = report.to_dict()["summary"]
    found, frames = summary.get("frames_with_face"), summary.get("frames")
    return f"{what}: face in {found}/{frames} frame(s), {summary.get('usable_ratio', 0):.0%} usable"


def _median_finite(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _round(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)
