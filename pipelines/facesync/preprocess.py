"""facesync preprocess, per twin: th's media and landmarks stages, then facesync's `track`.

    video      th VideoStage: 25 fps H.264 `video/video.mp4` and its sound track `video/audio.wav` (16 kHz)
    audio      th AudioStage: the raw audio upload -> `audio/audio.wav` (16 kHz); skipped when none was ingested
    landmarks  th LandmarksStage: 68 points per frame, usable flags and reasons; BadInput when there is no face
    track      `facesync/track.npz` and `facesync/validation.json` (see `track_stage`)

th's stages are reused as they are (their defaults, 25 fps and 16 kHz, are the seed's); their outputs land under
processed/{twin}/preprocessed/facesync/.
"""

from __future__ import annotations

from pipelines.base import Pipeline, Stage


def build_pipeline() -> Pipeline:
    # NOTE: imported here so that loading the registry does not pull in OpenCV and mediapipe.
    from pipelines.facesync.track_stage import TrackStage
    from pipelines.th.landmarks_stage import LandmarksStage
    from pipelines.th.preprocess import AudioStage, VideoStage

    stages: tuple[Stage, ...] = (VideoStage(), AudioStage(), LandmarksStage(), TrackStage())
    return Pipeline(model="facesync", task="preprocess", output_area="processed", stages=stages)
