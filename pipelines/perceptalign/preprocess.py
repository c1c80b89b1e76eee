"""perceptalign preprocess, per twin: video at 21.5 fps with its sound at 22050 Hz, then the chunks.

    video   th's VideoStage at 21.5 fps: video/video.mp4 and, when the video has sound, video/audio.wav
    audio   th's AudioStage at 22050 Hz: audio/audio.wav, only when the video is silent and audio was uploaded
    chunks  chunks/audio.wav, chunks/chunks.npz, chunks/chunks.json

No face stage: this model learns sound from whole frames, faces are not needed.
"""

from __future__ import annotations

from pipelines.base import Pipeline, Stage
from pipelines.perceptalign.chunks_stage import ChunksStage
from pipelines.perceptalign.media_stages import AudioStage, VideoStage


def build_pipeline() -> Pipeline:
    stages: tuple[Stage, ...] = (VideoStage(), AudioStage(), ChunksStage())
    return Pipeline(model="perceptalign", task="preprocess", output_area="processed", stages=stages)
