"""The classical engine's `render` stage: piecewise-affine warping of the twin's own frames, no learned weights."""

from __future__ import annotations

from pipelines.base import StageContext, StageResult
from pipelines.th.classical.warp import PiecewiseAffineWarper
from pipelines.th.render import render_stage

CROP_SIZE = 256


def classical_render(context: StageContext, *, fps: int, output: str) -> StageResult:
    count = render_stage(context, PiecewiseAffineWarper(CROP_SIZE), fps=fps, output=output, batch_size=16)
    return StageResult(
        outputs=[output],
        metrics={"frames": count, "fps": fps},
        message=f"{count} frames warped (piecewise affine, no learned weights) and muxed with the speech",
    )
