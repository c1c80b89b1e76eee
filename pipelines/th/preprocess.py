"""th preprocess: normalise the twin's raw audio, video and image into the forms every later stage reads.

Each stage converts one raw upload (the platform chooses which file) into canonical media with
`pipelines.media.normalize`, and is skipped when no upload of its kind exists. Parameters (from the job's
params, saved with the outputs): `fps` (default 25) for the video, `sample_rate_hz` (default 16000) for every
WAV. Bump a stage's `version` whenever its output bytes would change for the same input.

Errors: `BadInput` for an unusable upload or parameter (the message names the file and the fix), `Cancelled`
when the platform asks a stage to stop (ffmpeg is stopped with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.base import (
    BadInput,
    InputSpec,
    OutputSpec,
    Pipeline,
    Resources,
    Source,
    Stage,
    StageContext,
    StageResult,
)
from pipelines.media.ffmpeg_tool import FractionCallback
from pipelines.media.normalize import extract_audio, normalize_audio, normalize_image, normalize_video
from pipelines.th.outputs import AUDIO_WAV, IMAGE_PNG, VIDEO_AUDIO_WAV, VIDEO_MP4

DEFAULT_FPS = 25
DEFAULT_SAMPLE_RATE_HZ = 16000


class _RawMediaStage:
    """Shared by the three stages: one RAW input named after its media kind, CPU only."""

    name: str
    version: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        kind = self.inputs[0].name
        return None if kind in available_inputs else f"no raw {kind} was ingested"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


class AudioStage(_RawMediaStage):
    """Raw audio (any audio or video file) -> `audio/audio.wav`, mono PCM16 at `sample_rate_hz`."""

    name = "audio"
    version = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("audio", Source.RAW, kind="audio"),)
    outputs: tuple[OutputSpec, ...] = (OutputSpec(AUDIO_WAV),)

    def run(self, context: StageContext) -> StageResult:
        sample_rate_hz = _sample_rate_hz(context.params)
        context.progress(0.0, "converting audio")
        context.check_cancelled()
        converted = normalize_audio(
            context.inputs["audio"],
            context.output_path(AUDIO_WAV),
            sample_rate_hz,
            progress=_reporter(context, 0.0, 1.0, "converting audio"),
        )
        context.progress(1.0, "audio converted")
        source, output = converted.source_stream, converted.output
        duration_s = output.duration_s or 0.0
        return StageResult(
            outputs=[AUDIO_WAV],
            metrics={
                "duration_s": round(duration_s, 3),
                "sample_rate_hz": output.sample_rate_hz,
                "channels": output.channels,
                "source_codec": source.codec,
                "source_sample_rate_hz": source.sample_rate_hz,
                "source_channels": source.channels,
            },
            message=(
                f"{duration_s:.2f} s of {source.codec} {source.sample_rate_hz} Hz x{source.channels} "
                f"-> {sample_rate_hz} Hz mono PCM16"
            ),
        )


class VideoStage(_RawMediaStage):
    """Raw video -> `video/video.mp4` (H.264, constant `fps`, upright) and its sound as `video/audio.wav`.

    `video/audio.wav` is written only when the video has an audio track; it shares the video's time origin.
    """

    name = "video"
    version = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("video", Source.RAW, kind="video"),)
    outputs: tuple[OutputSpec, ...] = (OutputSpec(VIDEO_MP4), OutputSpec(VIDEO_AUDIO_WAV, optional=True))

    def run(self, context: StageContext) -> StageResult:
        fps = _fps(context.params)
        sample_rate_hz = _sample_rate_hz(context.params)
        src = context.inputs["video"]
        context.progress(0.0, "converting video")
        context.check_cancelled()
        # NOTE: the audio track is a small share of the work; the encode gets 90% of the progress bar.
        video = normalize_video(
            src, context.output_path(VIDEO_MP4), fps, progress=_reporter(context, 0.0, 0.9, "encoding video")
        )
        context.check_cancelled()
        outputs = [VIDEO_MP4]
        metrics: dict[str, Any] = {}
        if video.source.audio is not None:
            audio = extract_audio(
                src,
                context.output_path(VIDEO_AUDIO_WAV),
                sample_rate_hz,
                progress=_reporter(context, 0.9, 1.0, "extracting the sound track"),
            )
            outputs.append(VIDEO_AUDIO_WAV)
            metrics.update(
                audio_duration_s=round(audio.output.duration_s or 0.0, 3),
                sample_rate_hz=audio.output.sample_rate_hz,
                source_audio_codec=audio.source_stream.codec,
            )
        else:
            (context.output_dir / VIDEO_AUDIO_WAV).unlink(missing_ok=True)  # never leave a stale sound track
        context.progress(1.0, "video converted")

        source, output = video.source_stream, video.output
        frames = output.frames or 0
        source_width, source_height = source.display_size
        metrics.update(
            duration_s=round(frames / fps, 3),
            fps=fps,
            frames=frames,
            width=output.width,
            height=output.height,
            has_audio=VIDEO_AUDIO_WAV in outputs,
            source_codec=source.codec,
            source_fps=round(source.fps, 3) if source.fps else None,
            source_width=source_width,
            source_height=source_height,
            source_rotation_deg=source.rotation_deg,
        )
        sound = "with its sound track" if metrics["has_audio"] else "no sound track"
        return StageResult(
            outputs=outputs,
            metrics=metrics,
            message=(
                f"{frames} frames {output.width}x{output.height} at {fps:g} fps from {source.codec} "
                f"{source_width}x{source_height}; {sound}"
            ),
        )


class ImageStage(_RawMediaStage):
    """Raw image -> `image/image.png`, 8-bit RGB, EXIF orientation applied, alpha flattened on white."""

    name = "image"
    version = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("image", Source.RAW, kind="image"),)
    outputs: tuple[OutputSpec, ...] = (OutputSpec(IMAGE_PNG),)

    def run(self, context: StageContext) -> StageResult:
        context.progress(0.0, "converting image")
        context.check_cancelled()
        converted = normalize_image(context.inputs["image"], context.output_path(IMAGE_PNG))
        context.progress(1.0, "image converted")
        return StageResult(
            outputs=[IMAGE_PNG],
            metrics={
                "width": converted.width,
                "height": converted.height,
                "source_format": converted.source_format,
                "source_mode": converted.source_mode,
                "exif_orientation": converted.exif_orientation,
                "alpha": converted.alpha,
            },
            message=(
                f"{converted.source_format} {converted.source_mode} -> RGB PNG {converted.width}x{converted.height}"
            ),
        )


def build_pipeline() -> Pipeline:
    # NOTE: imported here so that loading the media stages does not pull in OpenCV, mediapipe and torch.
    from pipelines.th.crops_stage import CropsStage
    from pipelines.th.flame_stage import FlameStage
    from pipelines.th.landmarks_stage import LandmarksStage

    stages: tuple[Stage, ...] = (AudioStage(), VideoStage(), ImageStage(), LandmarksStage(), CropsStage(), FlameStage())
    return Pipeline(model="th", task="preprocess", output_area="processed", stages=stages)


def _reporter(context: StageContext, start: float, end: float, message: str) -> FractionCallback:
    """A 0..1 callback for one conversion, mapped onto [start, end] of the stage; it also checks cancellation
    (raising `Cancelled` stops ffmpeg)."""

    def report(fraction: float) -> None:
        context.progress(start + (end - start) * fraction, message)
        context.check_cancelled()

    return report


def _fps(params: Mapping[str, Any]) -> float:
    value = params.get("fps", DEFAULT_FPS)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 120:
        raise BadInput(f"parameter fps={value!r} is not a frame rate; give a number from 1 to 120 (default 25)")
    return value


def _sample_rate_hz(params: Mapping[str, Any]) -> int:
    value = params.get("sample_rate_hz", DEFAULT_SAMPLE_RATE_HZ)
    if isinstance(value, bool) or not isinstance(value, int) or not 8000 <= value <= 192000:
        raise BadInput(
            f"parameter sample_rate_hz={value!r} is not a sample rate; give a whole number of Hz from 8000 "
            "to 192000 (default 16000)"
        )
    return value
