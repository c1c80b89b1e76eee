"""The `chunks` stage of perceptalign preprocess: cut the twin's recording into whole chunks and describe each.

Audio and video are paired by `pipelines.media.timeline.reconcile` (the one frame/rate rule) and cut by
`Timeline.chunks(duration_s)`: 10 s at 21.5 fps = 215 frames = 220500 samples at 22050 Hz. A shorter tail is not
a chunk; it is dropped and recorded. Per chunk: SpecVQGAN's mel spectrogram of its audio and the 8-bit optical
flow of its 214 consecutive frame pairs (no pair crosses a chunk boundary: the seed ran denseflow on each chunk's
own video). The video is decoded once, and only up to the end of the last chunk.

A recording shorter than one chunk is not an error here: the stage writes C = 0 chunks and says why, and the
dataset task excludes the twin with that reason.

Parameters (job params; all optional): `duration_s` (10), `fps` (21.5), `sample_rate_hz` (22050),
`flow_short_side` (256; 0 keeps the video's size), `flow_bound` (20 px), `flow_algorithm` ("auto").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.media.frames import read_frames, video_info
from pipelines.media.timeline import Timeline, reconcile
from pipelines.media.wav import read_pcm16, to_float, write_pcm16
from pipelines.perceptalign import outputs as files
from pipelines.perceptalign.bundle import flow_member, npz_writer, write_summary
from pipelines.perceptalign.flow import FlowEstimator, flow_size, resolve_algorithm, tvl1_available
from pipelines.perceptalign.melspec import N_MELS, mel_columns, specvqgan_mel
from pipelines.perceptalign.settings import ChunkSettings, flow_algorithm_param

DECODE_BATCH = 16
FLOW_THREADS = 2  # the machines this runs on have 2 cores; Farneback itself uses one


class ChunksStage:
    name = "chunks"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("video", Source.PROCESSED, relative=files.VIDEO_MP4),
        InputSpec("video_audio", Source.PROCESSED, relative=files.VIDEO_AUDIO_WAV, optional=True),
        InputSpec("uploaded_audio", Source.PROCESSED, relative=files.UPLOADED_AUDIO_WAV, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(files.AUDIO_WAV),
        OutputSpec(files.CHUNKS_NPZ),
        OutputSpec(files.CHUNKS_JSON),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None if "video" in available_inputs else "the twin has no video to cut into chunks"

    def run(self, context: StageContext) -> StageResult:
        settings = ChunkSettings.from_params(context.params)
        algorithm = resolve_algorithm(flow_algorithm_param(context.params))
        video = context.inputs["video"]
        audio_name, audio_path = _sound(context)
        info = video_info(video)
        if info.frames is None or abs(info.fps - settings.fps) > 1e-3:
            raise BadInput(
                f"{files.VIDEO_MP4} is at {info.fps:g} fps with {info.frames} frames listed, not the "
                f"{settings.fps:g} fps asked for: run the twin's preprocess again with the same fps"
            )
        samples = read_pcm16(audio_path, settings.sample_rate_hz, name=audio_name)
        timeline = reconcile(
            info.frames, samples.size, settings.fps, settings.sample_rate_hz, what=f"the twin's video and {audio_name}"
        )
        ranges = timeline.chunks(settings.duration_s)
        sample_ranges = [(timeline.sample_at(start), timeline.sample_at(stop)) for start, stop in ranges]
        width, height = flow_size(info.width, info.height, settings.flow_short_side)
        estimator = FlowEstimator(algorithm, width, height, settings.flow_bound)

        write_pcm16(context.output_path(files.AUDIO_WAV), samples[: timeline.samples], settings.sample_rate_hz)
        columns = mel_columns(settings.samples_per_chunk)
        mel = np.zeros((len(ranges), N_MELS, columns), np.float32)
        for index, (start, stop) in enumerate(sample_ranges):
            mel[index] = specvqgan_mel(to_float(samples[start:stop]), settings.sample_rate_hz)

        with npz_writer(context.output_path(files.CHUNKS_NPZ)) as bundle:
            bundle.add("format_version", np.int32(files.FORMAT_VERSION))
            bundle.add("mel", mel)
            bundle.add("chunk_frames", np.asarray(ranges, dtype=np.int64).reshape(-1, 2))
            bundle.add("chunk_samples", np.asarray(sample_ranges, dtype=np.int64).reshape(-1, 2))
            decoded = _write_flow(context, video, ranges, estimator, bundle.add)

        summary = _summary(settings, timeline, ranges, sample_ranges, audio_name, estimator, columns, info.frames)
        write_summary(context.output_path(files.CHUNKS_JSON), summary)
        context.progress(1.0, f"{len(ranges)} chunk(s) written")
        return StageResult(
            outputs=[files.AUDIO_WAV, files.CHUNKS_NPZ, files.CHUNKS_JSON],
            metrics={
                "frames_in": decoded,
                "video_frames": info.frames,
                "chunks": len(ranges),
                "frames_per_chunk": settings.frames_per_chunk,
                "flow_pairs": len(ranges) * (settings.frames_per_chunk - 1),
                "tail_frames_dropped": summary["tail"]["frames"],
                "dropped_video_frames": timeline.dropped_video_frames,
                "dropped_audio_samples": timeline.dropped_audio_samples,
                "audio_source": audio_name,
                "flow_algorithm": algorithm,
                "flow_width": width,
                "flow_height": height,
                "mel_columns": columns,
            },
            message=_message(settings, timeline, len(ranges), algorithm, summary),
        )


def _sound(context: StageContext) -> tuple[str, Path]:
    """The video's own sound track if it has one (as the seed), else the uploaded audio; BadInput if neither."""
    if "video_audio" in context.inputs:
        return files.VIDEO_AUDIO_WAV, context.inputs["video_audio"]
    if "uploaded_audio" in context.inputs:
        return files.UPLOADED_AUDIO_WAV, context.inputs["uploaded_audio"]
    raise BadInput(
        "the twin's video has no sound track and no audio was uploaded, and this model learns sound from video: "
        "upload a video recorded with sound (or the recording's audio as well)"
    )


def _write_flow(
    context: StageContext,
    video: Path,
    ranges: list[tuple[int, int]],
    estimator: FlowEstimator,
    add: Callable[[str, np.ndarray], None],
) -> int:
    """Decode `video` up to the last chunk's end; add each chunk's flow to the bundle. Returns frames decoded.

    Three things overlap on the two cores: the pairs of a decoded batch run on `FLOW_THREADS` threads while the
    next batch is decoded here, and each finished chunk is compressed into the bundle on a writer thread (in
    chunk order, so the file is the same every time). A few chunks' flow at most are in memory.
    """
    if not ranges:
        return 0
    end = ranges[-1][1]
    size = ranges[0][1] - ranges[0][0]
    flows: dict[int, np.ndarray] = {}
    done: dict[int, int] = {}
    saved: list[Future[None]] = []
    in_flight: list[tuple[int, int, Future[np.ndarray]]] = []  # (chunk, pair index, flow)
    previous: np.ndarray | None = None
    frame = 0
    with ThreadPoolExecutor(FLOW_THREADS, "flow") as pool, ThreadPoolExecutor(1, "bundle") as writer:

        def collect(pairs: list[tuple[int, int, Future[np.ndarray]]]) -> None:
            for chunk, index, future in pairs:
                if chunk not in flows:
                    flows[chunk] = np.empty((size - 1, 2, estimator.height, estimator.width), dtype=np.uint8)
                flows[chunk][index] = future.result()
                done[chunk] = done.get(chunk, 0) + 1
                if done[chunk] == size - 1:
                    saved.append(writer.submit(add, flow_member(chunk), flows.pop(chunk)))

        for batch in read_frames(video, DECODE_BATCH, exact_colour=False):
            submitted: list[tuple[int, int, Future[np.ndarray]]] = []
            for rgb in batch[: end - frame]:
                grey = estimator.grey(rgb)
                chunk, offset = divmod(frame, size)  # NOTE: chunks tile [0, end) from frame 0
                if offset > 0 and previous is not None:
                    submitted.append((chunk, offset - 1, pool.submit(estimator.pair, previous, grey)))
                previous = grey
                frame += 1
            collect(in_flight)
            in_flight = submitted
            context.progress(0.95 * frame / end, f"optical flow: frame {frame} of {end}")
            context.check_cancelled()
            if frame >= end:
                break
        collect(in_flight)
        for future in saved:
            future.result()
    if frame < end:
        raise BadInput(
            f"{files.VIDEO_MP4} ended after {frame} frames, before the {end} its index promised: "
            "run the twin's preprocess again"
        )
    return frame


def _summary(
    settings: ChunkSettings,
    timeline: Timeline,
    ranges: list[tuple[int, int]],
    sample_ranges: list[tuple[int, int]],
    audio_name: str,
    estimator: FlowEstimator,
    columns: int,
    video_frames: int,
) -> dict[str, Any]:
    covered = ranges[-1][1] if ranges else 0
    tail = timeline.frames - covered
    summary: dict[str, Any] = {
        "format_version": files.FORMAT_VERSION,
        "settings": settings.to_json(),
        "frames_per_chunk": settings.frames_per_chunk,
        "samples_per_chunk": settings.samples_per_chunk,
        "audio_source": audio_name,
        "video_frames": video_frames,
        "timeline": {
            "frames": timeline.frames,
            "samples": timeline.samples,
            "seconds": round(timeline.duration_s, 4),
            "dropped_video_frames": timeline.dropped_video_frames,
            "dropped_audio_samples": timeline.dropped_audio_samples,
        },
        "chunks": len(ranges),
        "chunk_frames": [list(r) for r in ranges],
        "chunk_samples": [list(r) for r in sample_ranges],
        "tail": {
            "frames": tail,
            "seconds": round(tail / settings.fps, 4),
            "why": f"shorter than one {settings.duration_s:g} s chunk ({settings.frames_per_chunk} frames)",
        },
        "mel": {
            "shape_per_chunk": [N_MELS, columns],
            "convention": "SpecVQGAN: |STFT| n_fft 1024 hop 256, 80 Slaney mels 125-7600 Hz, "
            "clip((20*log10(max(mel,1e-5)) - 20 + 100) / 100, 0, 1)",
        },
        "flow": {
            **estimator.describe(),
            "tvl1_available": tvl1_available(),
            "pairs_per_chunk": settings.frames_per_chunk - 1,
        },
    }
    if not ranges:
        summary["unusable"] = (
            f"the recording gives {timeline.duration_s:.2f} s of paired audio and video, shorter than one "
            f"{settings.duration_s:g} s chunk: upload a longer recording or use a shorter duration_s"
        )
    return summary


def _message(settings: ChunkSettings, timeline: Timeline, chunks: int, algorithm: str, summary: dict[str, Any]) -> str:
    return (
        f"{chunks} chunk(s) of {settings.duration_s:g} s ({settings.frames_per_chunk} frames at {settings.fps:g} fps, "
        f"{settings.samples_per_chunk} samples at {settings.sample_rate_hz} Hz) from {timeline.duration_s:.2f} s; "
        f"tail of {summary['tail']['frames']} frame(s) dropped; flow by {algorithm}"
    )
