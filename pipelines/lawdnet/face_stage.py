"""The `lawdnet_face` stage: the landmark CSV, the 416x320 aligned crops and their landmarks, one row per frame.

Works on the first `frames` frames of the timeline (video frames past the end of the sound are not data). A frame
is usable (CSV `success=1`) when the landmark stage judged it usable and LawDNet's mouth region of its crop lies
in the frame; the others keep their row and their crop (the row count is the timeline's), and the dataset task
builds no clip over them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.lawdnet import outputs as files
from pipelines.lawdnet.alignment import (
    CROP_RULE,
    MOUTH_BOX,
    apply_transforms,
    crop_transforms,
    outside_share,
    warp_crop,
)
from pipelines.lawdnet.openface_csv import LandmarkRows, write_landmarks_csv
from pipelines.lawdnet.params import FPS
from pipelines.lawdnet.timeline_file import read_timeline
from pipelines.media.frames import FrameWriter, read_frames
from pipelines.th import outputs as th_files
from pipelines.th.face.landmarks_file import load_landmarks

BATCH_FRAMES = 32
# NOTE: x264's macroblock-tree rate control (on from preset "veryfast" up) gives different bytes from run to run for
# frames 320 wide (20 macroblocks; its SIMD code appears to read past rows whose macroblock count is not a multiple
# of 8). "superfast" has no macroblock tree: byte-identical crops, twice as fast, ~25 % larger at the same crf.
CROPS_PRESET = "superfast"
# Share of the mouth region that may fall outside the frame (an edge sliver) before the frame is unusable.
MAX_MOUTH_OUTSIDE = 0.05
MOUTH_OUTSIDE_FRAME = "mouth_outside_frame"


class LawdnetFaceStage:
    name = "lawdnet_face"
    version = "2"  # 2: crops framed by th's alignment rule, windowed (alignment.py)
    inputs: tuple[InputSpec, ...] = (
        InputSpec("video", Source.PROCESSED, relative=th_files.VIDEO_MP4, optional=True),
        InputSpec("landmarks", Source.PROCESSED, relative=th_files.VIDEO_LANDMARKS, optional=True),
        InputSpec("timeline", Source.PROCESSED, relative=files.TIMELINE_JSON),
    )
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(files.LANDMARKS_CSV),
        OutputSpec(files.CROPS_MP4),
        OutputSpec(files.CROP_LANDMARKS),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None  # NOTE: a twin without video fails in `run` with the reason; skipping would hide it

    def run(self, context: StageContext) -> StageResult:
        if not {"video", "landmarks"} <= set(context.inputs):
            raise BadInput("the twin has no video to train LawDNet on: upload a talking video (with its sound)")
        record = read_timeline(context.inputs["timeline"], files.TIMELINE_JSON)
        frames = record.timeline.frames
        landmarks = load_landmarks(context.inputs["landmarks"])
        if landmarks.frames != record.video_frames:
            raise BadInput(
                f"{th_files.VIDEO_LANDMARKS} has {landmarks.frames} frames but {files.TIMELINE_JSON} was made for "
                f"{record.video_frames}: run the twin's lawdnet preprocess again"
            )
        points = landmarks.points[:frames].astype(np.float64)
        found = landmarks.found[:frames]
        transforms = crop_transforms(points, found, record.timeline.fps, source=th_files.VIDEO_MP4)
        mouth_outside = outside_share(transforms, (landmarks.width, landmarks.height), MOUTH_BOX) > MAX_MOUTH_OUTSIDE
        usable = landmarks.usable[:frames] & ~mouth_outside
        reasons = np.where(landmarks.usable[:frames] & mouth_outside, MOUTH_OUTSIDE_FRAME, landmarks.reasons[:frames])

        context.progress(0.0, "cropping faces")
        decoded = self._write_crops(context, transforms, frames)
        crop_points = apply_transforms(transforms, points).astype(np.float32)
        np.save(context.output_path(files.CROP_LANDMARKS), crop_points, allow_pickle=False)
        rows = LandmarkRows(
            timestamp=np.arange(frames) / FPS,
            confidence=landmarks.confidence[:frames],
            success=usable,
            points=points,
        )
        write_landmarks_csv(context.output_path(files.LANDMARKS_CSV), rows)
        context.progress(1.0, "faces cropped")

        unusable = Counter(str(reason) for reason, ok in zip(reasons, usable, strict=True) if not ok)
        usable_frames = int(np.count_nonzero(usable))
        return StageResult(
            outputs=[files.LANDMARKS_CSV, files.CROPS_MP4, files.CROP_LANDMARKS],
            metrics={
                "frames_in": decoded,
                "frames": frames,
                "frames_with_face": int(np.count_nonzero(found)),
                "usable_frames": usable_frames,
                "unusable_frames": dict(sorted(unusable.items())),
                "crop_height": files.CROP_HEIGHT,
                "crop_width": files.CROP_WIDTH,
                "crop_rule": CROP_RULE,
            },
            message=f"{frames} aligned {files.CROP_WIDTH}x{files.CROP_HEIGHT} crops, {usable_frames} usable",
        )

    def _write_crops(self, context: StageContext, transforms: np.ndarray, frames: int) -> int:
        """Decode the video once (exact colours: the crops are outputs) and crop its first `frames` frames into
        crops.mp4; returns the frames decoded. The few frames past the timeline (at most the half second
        `reconcile` tolerates) are decoded too, so that `read_frames` still checks the file is whole. BadInput when
        the video holds fewer frames than the timeline."""
        written = decoded = 0
        writer = FrameWriter(
            context.output_path(files.CROPS_MP4),
            fps=FPS,
            width=files.CROP_WIDTH,
            height=files.CROP_HEIGHT,
            preset=CROPS_PRESET,
        )
        with writer:
            for batch in read_frames(context.inputs["video"], BATCH_FRAMES):
                decoded += len(batch)
                take = batch[: frames - written]
                if len(take):
                    writer.write(np.stack([warp_crop(frame, transforms[written + i]) for i, frame in enumerate(take)]))
                    written += len(take)
                context.progress(0.95 * written / frames, f"cropping faces: {written}/{frames}")
                context.check_cancelled()
            if written < frames:
                raise BadInput(
                    f"{th_files.VIDEO_MP4} holds {written} frames but the timeline needs {frames}: run the twin's "
                    "lawdnet preprocess again"
                )
        return decoded
