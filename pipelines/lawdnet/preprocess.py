"""lawdnet preprocess, per twin: th's media and landmark stages, then the lawdnet timeline, audio and face stages.

Outputs land under processed/{twin}/preprocessed/lawdnet/: th's `video/`, `audio/` and `face/` files (the same
stages, so the same names) and the lawdnet files of `pipelines.lawdnet.outputs`. A twin whose video shows no face
fails in the landmarks stage ("no face ..."), and the platform leaves it out of datasets with that reason.
"""

from __future__ import annotations

from pipelines.base import Pipeline, Stage
from pipelines.th.preprocess import AudioStage, VideoStage


def build_pipeline() -> Pipeline:
    # NOTE: imported here so that loading the registry does not pull in OpenCV and mediapipe.
    from pipelines.lawdnet.audio_stage import LawdnetAudioStage
    from pipelines.lawdnet.face_stage import LawdnetFaceStage
    from pipelines.th.landmarks_stage import LandmarksStage

    stages: tuple[Stage, ...] = (VideoStage(), AudioStage(), LandmarksStage(), LawdnetAudioStage(), LawdnetFaceStage())
    return Pipeline(model="lawdnet", task="preprocess", output_area="processed", stages=stages)
