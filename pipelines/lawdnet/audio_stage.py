"""The `lawdnet_audio` stage: one timeline for the twin's frames and sound, the cut audio and its features.

Reads the frame count from the landmarks file (the frames the landmark stage decoded, the truth for the video),
and the sound: the video's own track when it has one (same time origin as the frames), else the uploaded audio.
`timeline.reconcile` keeps the frames the audio fully covers and cuts the audio after the last of them; the
features are computed from exactly that audio and put on the frames by `timeline.align_features`. So the audio
of a twin is always `frames * 640` samples and its features always `frames` rows, whichever stream was longer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.lawdnet import outputs as files
from pipelines.lawdnet import params as job_params
from pipelines.lawdnet.audio_features import open_extractor
from pipelines.lawdnet.timeline_file import TimelineRecord, write_timeline
from pipelines.media.timeline import align_features, reconcile
from pipelines.media.wav import read_pcm16, to_float, write_pcm16
from pipelines.th import outputs as th_files
from pipelines.th.face.landmarks_file import load_landmarks


class LawdnetAudioStage:
    name = "lawdnet_audio"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("landmarks", Source.PROCESSED, relative=th_files.VIDEO_LANDMARKS, optional=True),
        InputSpec("video_audio", Source.PROCESSED, relative=th_files.VIDEO_AUDIO_WAV, optional=True),
        InputSpec("audio", Source.PROCESSED, relative=th_files.AUDIO_WAV, optional=True),
        InputSpec("deepspeech_graph", Source.COMMON, relative=files.DEEPSPEECH_GRAPH, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(files.TIMELINE_JSON),
        OutputSpec(files.AUDIO_WAV),
        OutputSpec(files.AUDIO_FEATURES),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None  # NOTE: a twin without video or sound fails in `run` with the reason; skipping would hide it

    def run(self, context: StageContext) -> StageResult:
        job_params.check_media_rates(context.params)
        extractor = open_extractor(job_params.audio_features(context.params), context.inputs.get("deepspeech_graph"))
        if "landmarks" not in context.inputs:
            raise BadInput("the twin has no video to train LawDNet on: upload a talking video (with its sound)")
        context.progress(0.0, "reading the frame count and the sound")
        landmarks = load_landmarks(context.inputs["landmarks"])
        if abs(landmarks.fps - job_params.FPS) > 1e-3:
            raise BadInput(
                f"{th_files.VIDEO_LANDMARKS} is at {landmarks.fps:g} fps, not {job_params.FPS}: run the twin's "
                "lawdnet preprocess again without the fps parameter"
            )
        source = next((name for name in ("video_audio", "audio") if name in context.inputs), None)
        if source is None:
            raise BadInput(
                "the twin has no sound: its video has no sound track and no audio was uploaded; upload a video "
                "recorded with sound, or its audio as a separate file"
            )
        source_name = th_files.VIDEO_AUDIO_WAV if source == "video_audio" else th_files.AUDIO_WAV
        samples = read_pcm16(context.inputs[source], job_params.SAMPLE_RATE_HZ, name=source_name)
        what = "the twin's video and its sound track" if source == "video_audio" else "the twin's video and audio"
        timeline = reconcile(landmarks.frames, samples.size, job_params.FPS, job_params.SAMPLE_RATE_HZ, what=what)
        context.check_cancelled()

        cut = samples[: timeline.samples]
        write_pcm16(context.output_path(files.AUDIO_WAV), cut, job_params.SAMPLE_RATE_HZ)
        context.progress(0.2, f"computing {extractor.name} features")
        features = np.asarray(extractor.extract(to_float(cut)), dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != extractor.dim:
            raise AssertionError(f"{extractor.name} gave features of shape {features.shape}, not (T, {extractor.dim})")
        aligned = align_features(features, extractor.rate_hz, timeline)
        context.check_cancelled()
        np.save(context.output_path(files.AUDIO_FEATURES), aligned, allow_pickle=False)
        record = TimelineRecord(
            timeline=timeline,
            video_frames=landmarks.frames,
            audio_samples=int(samples.size),
            audio_source=source_name,
            audio_features=extractor.describe(),
        )
        write_timeline(context.output_path(files.TIMELINE_JSON), record)
        context.progress(1.0, "timeline written")
        return StageResult(
            outputs=[files.TIMELINE_JSON, files.AUDIO_WAV, files.AUDIO_FEATURES],
            metrics={
                "frames": timeline.frames,
                "video_frames": landmarks.frames,
                "audio_samples": int(samples.size),
                "samples": timeline.samples,
                "dropped_video_frames": timeline.dropped_video_frames,
                "dropped_audio_samples": timeline.dropped_audio_samples,
                "audio_source": source_name,
                "audio_features": extractor.name,
                "feature_rows_in": int(features.shape[0]),
                "feature_dim": extractor.dim,
            },
            message=(
                f"{timeline.frames} frames ({timeline.duration_s:.2f} s) paired with {source_name}; dropped "
                f"{timeline.dropped_video_frames} video frame(s) and {timeline.dropped_audio_samples} audio "
                f"sample(s); {extractor.name} features {aligned.shape}"
            ),
        )
