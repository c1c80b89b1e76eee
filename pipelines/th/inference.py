"""th inference: a new recording of speech -> an MP4 of the twin saying it.

Stages (outputs under inference/{twin}/th/{run}/):

    audio    the request's audio -> audio/audio.wav (16 kHz mono)
    motion   speech -> motion/driving.npz: per output frame (25 fps, as many as the audio lasts) the twin's own
             frame it is built on (head pose, eyes, blinks; the video played forwards and backwards) and the 68
             landmarks the face takes there, the mouth from the speech
    render   warp the twin's face so it follows the landmarks, paste it back into the frame, mux with the audio
             -> video.mp4 (H.264 + AAC, 25 fps, as long as the audio within one frame)
    lipsync  the mouth re-detected in video.mp4 against the speech -> lipsync.json; a low score flags the run

The engine (`engine` parameter: `platform run --engine neural|classical`) chooses how `motion` and `render` work:
neural = FaceFormer -> FLAME landmarks, BFv2v warping (`pipelines.th.neural`); classical = voice activity, loudness
and phone timing -> mouth shapes, piecewise-affine warping with an inner-mouth fill (`pipelines.th.classical`), no
learned face weights.
"""

from __future__ import annotations

import importlib
import json
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
from pipelines.media.normalize import normalize_audio
from pipelines.th import outputs as files

ENGINES = ("neural", "classical")
INFERENCE_FPS = 25
AUDIO_WAV = "audio/audio.wav"
DRIVING = "motion/driving.npz"
VIDEO = "video.mp4"
LIPSYNC_JSON = "lipsync.json"


def engine_of(params: Mapping[str, Any]) -> str:
    value = params.get("engine", "neural")
    if value not in ENGINES:
        raise BadInput(f"engine {value!r} is unknown; use one of {', '.join(ENGINES)}")
    return str(value)


class SpeechStage:
    """The request's audio -> 16 kHz mono PCM16, the rate FaceFormer's wav2vec2 and the classical engine read."""

    name = "audio"
    version = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("audio", Source.REQUEST),)
    outputs: tuple[OutputSpec, ...] = (OutputSpec(AUDIO_WAV),)
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None

    def run(self, context: StageContext) -> StageResult:
        converted = normalize_audio(context.inputs["audio"], context.output_path(AUDIO_WAV), 16000)
        duration = converted.output.duration_s or 0.0
        if duration <= 0:
            raise BadInput("the request's audio holds no sound: give a recording of speech")
        return StageResult(
            outputs=[AUDIO_WAV],
            metrics={"duration_s": round(duration, 3)},
            message=f"{duration:.2f} s of speech at 16 kHz mono",
        )


def motion_inputs() -> tuple[InputSpec, ...]:
    return (
        InputSpec("audio", Source.OUTPUT, relative=AUDIO_WAV),
        InputSpec("video_landmarks", Source.PROCESSED, relative=files.VIDEO_LANDMARKS, optional=True),
        InputSpec("image_landmarks", Source.PROCESSED, relative=files.IMAGE_LANDMARKS, optional=True),
        InputSpec("flame_params", Source.PROCESSED, relative=files.FLAME_PARAMS, optional=True),
        InputSpec("faceformer", Source.COMMON, relative=files.FACEFORMER_VOCASET, optional=True),
        InputSpec("flame_generic", Source.COMMON, relative=files.FLAME_MODELS["generic"], optional=True),
        InputSpec("deca_embedding", Source.COMMON, relative=files.FLAME_DECA_EMBEDDING, optional=True),
        InputSpec("static_embedding", Source.COMMON, relative=files.FLAME_STATIC_EMBEDDING, optional=True),
        InputSpec("dynamic_embedding", Source.COMMON, relative=files.FLAME_DYNAMIC_EMBEDDING, optional=True),
    )


class _EngineStage:
    """A stage whose work depends on the run's engine: `engines` maps each engine to "module:function", imported
    only when that engine runs (the neural one pulls in torch models, the classical one pocketsphinx)."""

    name: str
    version = "1"
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    output: str
    engines: Mapping[str, str]
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None

    def run(self, context: StageContext) -> StageResult:
        module_name, _, function = self.engines[engine_of(context.params)].partition(":")
        work = getattr(importlib.import_module(module_name), function)
        result: StageResult = work(context, fps=INFERENCE_FPS, output=self.output)
        return result


class MotionStage(_EngineStage):
    name = "motion"
    inputs: tuple[InputSpec, ...] = motion_inputs()
    outputs: tuple[OutputSpec, ...] = (OutputSpec(DRIVING),)
    output = DRIVING
    engines = {
        "neural": "pipelines.th.neural.motion:neural_motion",
        "classical": "pipelines.th.classical.motion:classical_motion",
    }


class RenderStage(_EngineStage):
    name = "render"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("audio", Source.OUTPUT, relative=AUDIO_WAV),
        InputSpec("driving", Source.OUTPUT, relative=DRIVING),
        InputSpec("video", Source.PROCESSED, relative=files.VIDEO_MP4, optional=True),
        InputSpec("video_transforms", Source.PROCESSED, relative=files.VIDEO_TRANSFORMS, optional=True),
        InputSpec("video_landmarks", Source.PROCESSED, relative=files.VIDEO_LANDMARKS, optional=True),
        InputSpec("bfv2v", Source.COMMON, relative=files.BFV2V_CHECKPOINT, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (OutputSpec(VIDEO),)
    output = VIDEO
    engines = {
        "neural": "pipelines.th.neural.render:neural_render",
        "classical": "pipelines.th.classical.render:classical_render",
    }


class LipSyncStage:
    """Scores the rendered MP4 as a viewer would judge it: the mouth re-detected in every frame against the speech
    (`pipelines.th.lipsync`), the same for both engines. A score below the thresholds flags the run (the job still
    succeeds: the video exists, a person should look at it) and `platform status` shows the reason."""

    name = "lipsync"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("video", Source.OUTPUT, relative=VIDEO),
        InputSpec("audio", Source.OUTPUT, relative=AUDIO_WAV),
    )
    outputs: tuple[OutputSpec, ...] = (OutputSpec(LIPSYNC_JSON),)
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None

    def run(self, context: StageContext) -> StageResult:
        from pipelines.th.lipsync import LipSyncThresholds, lipsync_score

        thresholds = LipSyncThresholds.from_params(context.params.get("lipsync", {}))
        context.progress(0.0, "re-detecting the mouth in the rendered video")
        score = lipsync_score(context.inputs["video"], context.inputs["audio"])
        flags = thresholds.flags(score)
        report = score.to_dict() | {"flags": flags, "flagged": bool(flags), "thresholds": thresholds.to_dict()}
        context.output_path(LIPSYNC_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        offset = "n/a" if score.offset_frames is None else f"{score.offset_frames:+d}"
        summary = (
            f"lip-sync r={_number(score.correlation)} at offset {offset} frame(s); "
            f"{_percent(score.silent_closed_share)} of silent frames closed"
        )
        return StageResult(
            outputs=[LIPSYNC_JSON],
            metrics={key: report[key] for key in ("correlation", "offset_frames", "silent_closed_share", "flagged")}
            | {"flags": flags},
            message=("FLAGGED " if flags else "") + summary + ("; " + "; ".join(flags) if flags else ""),
        )


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def build_pipeline() -> Pipeline:
    stages: tuple[Stage, ...] = (SpeechStage(), MotionStage(), RenderStage(), LipSyncStage())
    return Pipeline(model="th", task="inference", output_area="inference", stages=stages)
