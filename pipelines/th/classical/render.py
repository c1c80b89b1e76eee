"""The classical engine's `render` stage: piecewise-affine warping of the twin's own frames, no learned weights."""

from __future__ import annotations

import numpy as np

from pipelines.base import BadInput, StageContext, StageResult
from pipelines.th import outputs as files
from pipelines.th.classical.warp import PiecewiseAffineWarper
from pipelines.th.face.align import load_transforms
from pipelines.th.face.landmarks_file import load_landmarks
from pipelines.th.render import load_frames, render

CROP_SIZE = 256


def classical_render(context: StageContext, *, fps: int, output: str) -> StageResult:
    inputs = context.inputs
    needed = (
        ("video", files.VIDEO_MP4),
        ("video_transforms", files.VIDEO_TRANSFORMS),
        ("video_landmarks", files.VIDEO_LANDMARKS),
    )
    for name, what in needed:
        if name not in inputs:
            raise BadInput(f"the twin has no {what}: run `platform run --task preprocess` with a video first")
    with np.load(inputs["driving"], allow_pickle=False) as driving:
        driving_points, sources = driving["landmarks"], driving["source_frames"]
    twin = load_landmarks(inputs["video_landmarks"])

    def report(fraction: float, message: str) -> None:
        context.progress(fraction, message)
        context.check_cancelled()

    count = render(
        frames=load_frames(inputs["video"]),
        transforms=load_transforms(inputs["video_transforms"]),
        twin_points=twin.points,
        driving_points=driving_points,
        source_frames=sources,
        warper=PiecewiseAffineWarper(CROP_SIZE),
        audio=inputs["audio"],
        output=context.output_path(output),
        fps=fps,
        batch_size=16,
        progress=report,
    )
    return StageResult(
        outputs=[output],
        metrics={"frames": count, "fps": fps},
        message=f"{count} frames warped (piecewise affine, no learned weights) and muxed with the speech",
    )
