"""The `crops` stage of th preprocess: aligned face crops of the video and the photo, with their transforms.

Every frame's crop comes from one similarity transform (frame pixels -> the unit crop square), estimated from the
smoothed landmarks and smoothed over time; the transforms are saved (`face/crops/*_transforms.npz`) so inference
can paste a generated crop back into the original frame at any crop size (`face.align.paste_back`).

Parameters: `crop_sizes` (default [256, 512]; each one of 128, 256, 384, 512, 1024).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.media.frames import FrameWriter, read_frames
from pipelines.media.images import read_rgb
from pipelines.th import outputs as files
from pipelines.th.face.align import crop, estimate_transforms, save_transforms
from pipelines.th.face.landmarks_file import load_landmarks
from pipelines.th.face.pictures import save_png

BATCH_FRAMES = 32


class CropsStage:
    name = "crops"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("video", Source.PROCESSED, relative=files.VIDEO_MP4, optional=True),
        InputSpec("video_landmarks", Source.PROCESSED, relative=files.VIDEO_LANDMARKS, optional=True),
        InputSpec("image", Source.PROCESSED, relative=files.IMAGE_PNG, optional=True),
        InputSpec("image_landmarks", Source.PROCESSED, relative=files.IMAGE_LANDMARKS, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(files.VIDEO_TRANSFORMS, optional=True),
        OutputSpec(files.IMAGE_TRANSFORMS, optional=True),
        *(OutputSpec(files.video_crop(size), optional=True) for size in files.CROP_SIZES_SUPPORTED),
        *(OutputSpec(files.image_crop(size), optional=True) for size in files.CROP_SIZES_SUPPORTED),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        if not ({"video", "video_landmarks"} <= available_inputs or {"image", "image_landmarks"} <= available_inputs):
            return "no video or photo with landmarks to crop"
        return None

    def run(self, context: StageContext) -> StageResult:
        sizes = _crop_sizes(context.params)
        written: list[str] = []
        metrics: dict[str, Any] = {"sizes": list(sizes)}
        if {"video", "video_landmarks"} <= set(context.inputs):
            landmarks = load_landmarks(context.inputs["video_landmarks"])
            transforms = estimate_transforms(
                landmarks.points, landmarks.found, landmarks.fps, smooth=True, source=files.VIDEO_MP4
            )
            save_transforms(
                context.output_path(files.VIDEO_TRANSFORMS),
                transforms,
                landmarks.found,
                (landmarks.width, landmarks.height),
                landmarks.fps,
            )
            written.append(files.VIDEO_TRANSFORMS)
            frames = 0
            with ExitStack() as stack:
                writers = {
                    size: stack.enter_context(
                        FrameWriter(
                            context.output_path(files.video_crop(size)), fps=landmarks.fps, width=size, height=size
                        )
                    )
                    for size in sizes
                }
                for batch in read_frames(context.inputs["video"], BATCH_FRAMES):
                    for frame in batch[: max(0, len(transforms) - frames)]:
                        for size, writer in writers.items():
                            writer.write(crop(frame, transforms[frames], size))
                        frames += 1
                    context.progress(0.9 * frames / max(1, landmarks.frames), f"cropping: {frames} frames")
                    context.check_cancelled()
            if frames != landmarks.frames:
                raise BadInput(
                    f"{files.VIDEO_MP4} has {frames} frames but its landmarks have {landmarks.frames}: "
                    "run the twin's preprocess again"
                )
            written += [files.video_crop(size) for size in sizes]
            metrics["video_frames"] = frames
        if {"image", "image_landmarks"} <= set(context.inputs):
            landmarks = load_landmarks(context.inputs["image_landmarks"])
            transforms = estimate_transforms(
                landmarks.points, landmarks.found, 1.0, smooth=False, source=files.IMAGE_PNG
            )
            save_transforms(
                context.output_path(files.IMAGE_TRANSFORMS),
                transforms,
                landmarks.found,
                (landmarks.width, landmarks.height),
                0.0,
            )
            written.append(files.IMAGE_TRANSFORMS)
            image = read_rgb(context.inputs["image"], files.IMAGE_PNG)
            for size in sizes:
                save_png(context.output_path(files.image_crop(size)), crop(image, transforms[0], size))
                written.append(files.image_crop(size))
        context.progress(1.0, "cropped")
        what = []
        if "video_frames" in metrics:
            what.append(f"{metrics['video_frames']} video frames")
        if files.IMAGE_TRANSFORMS in written:
            what.append("the photo")
        return StageResult(
            outputs=written,
            metrics=metrics,
            message=f"aligned crops of {' and '.join(what)} at {', '.join(f'{s}x{s}' for s in sizes)}",
        )


def _crop_sizes(params: Mapping[str, Any]) -> tuple[int, ...]:
    value = params.get("crop_sizes", list(files.DEFAULT_CROP_SIZES))
    sizes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(sizes, list)
        or not sizes
        or any(isinstance(s, bool) or s not in files.CROP_SIZES_SUPPORTED for s in sizes)
    ):
        supported = ", ".join(str(s) for s in files.CROP_SIZES_SUPPORTED)
        raise BadInput(f"parameter crop_sizes={value!r} is not a list of crop sizes; each must be one of {supported}")
    return tuple(sorted(set(int(s) for s in sizes)))
