"""th's media stages with this model's rates: the video at 21.5 fps, every WAV at 22050 Hz.

th's stages read `fps` and `sample_rate_hz` from the job's parameters with th's defaults (25, 16000); these
subclasses only fill in this model's defaults before delegating, so th's behaviour, versions and outputs are
untouched and a job may still set either parameter.

The seed takes each video's own sound. The uploaded audio is converted only when the video has no sound track
(the audio stage is skipped when `video/audio.wav` exists), and the chunks stage's `timeline.reconcile` then
refuses audio whose length is not the video's: an unrelated recording.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pipelines.base import InputSpec, Source, StageContext, StageResult
from pipelines.perceptalign import outputs as files
from pipelines.perceptalign.settings import DEFAULT_FPS, DEFAULT_SAMPLE_RATE_HZ
from pipelines.th import preprocess as th


def with_model_defaults(context: StageContext) -> StageContext:
    """The same context with this model's fps and sample rate where the job did not set them."""
    params = {"fps": DEFAULT_FPS, "sample_rate_hz": DEFAULT_SAMPLE_RATE_HZ, **dict(context.params)}
    return dataclasses.replace(context, params=params)


class VideoStage(th.VideoStage):
    """th's `video` stage at 21.5 fps with its sound track at 22050 Hz."""

    def run(self, context: StageContext) -> StageResult:
        return super().run(with_model_defaults(context))


class AudioStage(th.AudioStage):
    """th's `audio` stage at 22050 Hz, run only for a video without a sound track."""

    inputs: tuple[InputSpec, ...] = (
        InputSpec("audio", Source.RAW, kind="audio"),
        InputSpec("video_audio", Source.PROCESSED, relative=files.VIDEO_AUDIO_WAV, optional=True),
    )

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        if "video_audio" in available_inputs:
            return "the video has its own sound track, which this model uses (as the seed does)"
        return super().applies(available_inputs, params)

    def run(self, context: StageContext) -> StageResult:
        return super().run(with_model_defaults(context))
