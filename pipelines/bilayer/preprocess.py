"""bilayer preprocess, per twin: th's `video` and `landmarks` stages, then the bi-layer `frames` stage.

No audio stage: the bi-layer model is driven by keypoints, not by sound (th's `video` stage still writes the clip's
sound track as `video/audio.wav`, which nothing here reads). Parameters of th's stages keep their meaning and
defaults (`fps` 25, `landmark_backend`, `quality`, `smoothing`); the frames stage's are in `frames_stage.py`.
"""

from __future__ import annotations

from pipelines.base import Pipeline, Stage
from pipelines.th.preprocess import VideoStage

MODEL = "bilayer"


def build_pipeline() -> Pipeline:
    # NOTE: imported here so that loading the registry does not pull in OpenCV and mediapipe.
    from pipelines.bilayer.frames_stage import FramesStage
    from pipelines.th.landmarks_stage import LandmarksStage

    stages: tuple[Stage, ...] = (VideoStage(), LandmarksStage(), FramesStage())
    return Pipeline(model=MODEL, task="preprocess", output_area="processed", stages=stages)
