"""The `frames` stage of bilayer preprocess: every n-th frame with a usable face, as a crop, keypoints and a mask.

Reads th's normalised `video/video.mp4` and its `face/video_landmarks.npz` (written by th's `video` and
`landmarks` stages, run inside this pipeline). Samples frames 0, n, 2n, ... (`sampling_rate` n: keep every n-th
frame, as the seed's `--sampling_rate`; the default 25 is one frame a second at 25 fps). A sampled frame is kept
when the landmarks stage judged it usable and its crop is mostly inside the frame; each kept frame becomes a crop
(`crop.py`), its 68 keypoints in crop pixels and a person mask (`segmentation.py`), all written to one bundle
(`samples_file.py`) with a report. A video with no usable sampled frame gives an empty bundle, not a failure: the
dataset task excludes such a twin and says why.

Parameters (job params; all optional):
    sampling_rate      keep every n-th frame, 1..1000 (default 25)
    image_size         side of the square crops in pixels, 64..1024 (default 256, the bi-layer model's size)
    max_outside        largest share of a crop allowed outside the frame (filled black), 0..1 (default 0.4)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.bilayer import outputs as names
from pipelines.bilayer.crop import CROP_RULE, CropBox, crop_face, face_box, inside_frame, points_in_crop
from pipelines.bilayer.sampled_frames import SampledFrames
from pipelines.bilayer.samples_file import OK, VIDEO_ID_LENGTH, Samples, save_samples
from pipelines.bilayer.segmentation import MODEL as SEGMENTATION_MODEL
from pipelines.bilayer.segmentation import PersonSegmenter
from pipelines.dataset_kit.params import fraction, whole_number
from pipelines.th import outputs as th_files
from pipelines.th.face.landmarks_file import FaceLandmarks, load_landmarks

DEFAULT_SAMPLING_RATE = 25
DEFAULT_IMAGE_SIZE = 256
DEFAULT_MAX_OUTSIDE = 0.4
# Own rejection reasons, next to the landmarks stage's (no_face, rival_face, face_too_small, ...).
CROP_OUTSIDE_FRAME = "crop_outside_frame"
NO_LANDMARKS = "no_landmarks"


class FramesStage:
    name = "frames"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("video", Source.PROCESSED, relative=th_files.VIDEO_MP4, optional=True),
        InputSpec("video_landmarks", Source.PROCESSED, relative=th_files.VIDEO_LANDMARKS, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (OutputSpec(names.SAMPLES_NPZ), OutputSpec(names.REPORT_JSON))
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        if not {"video", "video_landmarks"} <= available_inputs:
            return "the twin has no video with landmarks to sample frames from"
        return None

    def run(self, context: StageContext) -> StageResult:
        sampling_rate = whole_number(context.params, "sampling_rate", DEFAULT_SAMPLING_RATE, 1, 1000)
        image_size = whole_number(context.params, "image_size", DEFAULT_IMAGE_SIZE, 64, 1024)
        max_outside = fraction(context.params, "max_outside", DEFAULT_MAX_OUTSIDE)
        video_path = context.inputs["video"]
        landmarks = load_landmarks(context.inputs["video_landmarks"])
        timing = {"read": 0.0, "crop": 0.0, "segment": 0.0, "write": 0.0}
        context.progress(0.0, "sampling frames")

        started = time.perf_counter()
        video_id = _video_id(video_path)
        timing["read"] += time.perf_counter() - started
        reader = SampledFrames(video_path, sampling_rate, th_files.VIDEO_MP4)
        kept: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, CropBox]] = []
        sampled: list[tuple[int, str]] = []
        with PersonSegmenter() as segmenter, closing(iter(reader)) as frames:
            while True:
                started = time.perf_counter()
                item = next(frames, None)
                timing["read"] += time.perf_counter() - started
                if item is None or item[0] >= landmarks.frames:
                    break  # NOTE: more frames than landmarks is reported below as a mismatch
                index, frame = item
                started = time.perf_counter()
                box, reason = _judge(landmarks, index, max_outside)
                sampled.append((index, reason))
                if box is not None:
                    image = crop_face(frame, box, image_size)
                    keypoints = points_in_crop(landmarks.points[index], box, image_size)
                    timing["crop"] += time.perf_counter() - started
                    started = time.perf_counter()
                    mask = segmenter.mask(image)
                    if box.outside_fraction(landmarks.width, landmarks.height) > 0:
                        # NOTE: the segmenter takes black padding below the shoulders for clothing; it is no person
                        mask[~inside_frame(box, landmarks.width, landmarks.height, image_size)] = 0
                    kept.append((index, image, keypoints, mask, box))
                    timing["segment"] += time.perf_counter() - started
                fraction_done = min(1.0, index / max(1, landmarks.frames))
                context.progress(0.9 * fraction_done, f"sampled {len(sampled)} frames, kept {len(kept)}")
                context.check_cancelled()
        if reader.decoded != landmarks.frames:
            raise BadInput(
                f"{th_files.VIDEO_MP4} has {reader.decoded} frames but its landmarks have {landmarks.frames}: "
                "run the twin's preprocess again"
            )

        started = time.perf_counter()
        samples = _bundle(kept, sampled, landmarks, sampling_rate, image_size, video_id)
        save_samples(context.output_path(names.SAMPLES_NPZ), samples)
        rejected = samples.rejected()
        report: dict[str, Any] = {
            "frames_seen": reader.decoded,
            "fps": landmarks.fps,
            "sampling_rate": sampling_rate,
            "image_size": image_size,
            "max_outside": max_outside,
            "sampled": len(sampled),
            "kept": samples.count,
            "rejected": rejected,
            "rejected_frames": [{"frame": index, "reason": reason} for index, reason in sampled if reason != OK],
            "video_id": video_id,
            "crop_rule": CROP_RULE,
            "segmentation": SEGMENTATION_MODEL,
            "landmark_backend": landmarks.backend,
        }
        # NOTE: no timings in the report, so that the same input gives the same bytes; they are in the metrics
        context.output_path(names.REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        timing["write"] += time.perf_counter() - started
        context.progress(1.0, "frames sampled")

        metrics = {key: report[key] for key in ("sampling_rate", "image_size", "sampled", "kept", "rejected")}
        metrics["frames_in"] = reader.decoded
        metrics["timing_s"] = {key: round(value, 3) for key, value in timing.items()}
        why = ", ".join(f"{reason} {count}" for reason, count in rejected.items())
        return StageResult(
            outputs=[names.SAMPLES_NPZ, names.REPORT_JSON],
            metrics=metrics,
            message=(
                f"kept {samples.count} of {len(sampled)} sampled frames (every {sampling_rate} of {reader.decoded})"
                f" as {image_size}x{image_size} crops" + (f"; rejected: {why}" if why else "")
            ),
        )


def _judge(landmarks: FaceLandmarks, index: int, max_outside: float) -> tuple[CropBox | None, str]:
    """The crop of frame `index`, or None and why the frame is not kept (the landmarks stage's reason first)."""
    reason = str(landmarks.reasons[index])
    if not landmarks.usable[index]:
        return None, reason if reason != OK else NO_LANDMARKS
    box = face_box(landmarks.points[index])
    if box is None:
        return None, NO_LANDMARKS
    if box.outside_fraction(landmarks.width, landmarks.height) > max_outside:
        return None, CROP_OUTSIDE_FRAME
    return box, OK


def _bundle(
    kept: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, CropBox]],
    sampled: list[tuple[int, str]],
    landmarks: FaceLandmarks,
    sampling_rate: int,
    image_size: int,
    video_id: str,
) -> Samples:
    size = image_size
    return Samples(
        imgs=np.stack([item[1] for item in kept]) if kept else np.zeros((0, size, size, 3), np.uint8),
        keypoints=np.stack([item[2] for item in kept]) if kept else np.zeros((0, 68, 2), np.float32),
        segs=np.stack([item[3] for item in kept]) if kept else np.zeros((0, size, size), np.uint8),
        frame_index=np.array([item[0] for item in kept], dtype=np.int64),
        boxes=np.stack([item[4].as_array() for item in kept]) if kept else np.zeros((0, 4), np.int32),
        sampled_index=np.array([index for index, _ in sampled], dtype=np.int64),
        sampled_reason=np.array([reason for _, reason in sampled], dtype="<U24"),
        fps=float(landmarks.fps),
        sampling_rate=sampling_rate,
        image_size=image_size,
        frames=landmarks.frames,
        video_id=video_id,
    )


def _video_id(path: Path) -> str:
    """An 11-character id of the normalised video (the length of a YouTube id, as VoxCeleb2's VIDEO_IDs are): the
    first hex digits of its SHA-256. Hex, so that no id starts with "-" and confuses a command line."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:VIDEO_ID_LENGTH]
