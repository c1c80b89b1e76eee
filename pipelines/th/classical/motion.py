"""The classical engine's `motion` stage: speech -> mouth opening/width per frame -> the twin's mouth landmarks.

Only the twin's own preprocess outputs are needed (its video landmarks); no learned face weights. Head pose, eyes
and blinks are the twin's own, from its video played forwards and backwards (`driving.ping_pong`).
"""

from __future__ import annotations

import numpy as np

from pipelines.base import BadInput, StageContext, StageResult
from pipelines.media.wav import read_wav_16k
from pipelines.th.classical.mouth_shape import MouthModel
from pipelines.th.classical.speech import mouth_track
from pipelines.th.driving import frame_count, ping_pong, replace_mouth
from pipelines.th.face.landmarks_file import load_landmarks


def classical_motion(context: StageContext, *, fps: int, output: str) -> StageResult:
    inputs = context.inputs
    if "video_landmarks" not in inputs:
        raise BadInput(
            "the twin has no video landmarks (face/video_landmarks.npz): ingest a video of the person and run "
            "`platform run --task preprocess` first"
        )
    audio = read_wav_16k(inputs["audio"])
    count = frame_count(len(audio) / 16000.0, fps)
    context.progress(0.1, "speech: voice activity, loudness, phones")
    track = mouth_track(audio, 16000, fps)
    twin = load_landmarks(inputs["video_landmarks"])
    model = MouthModel.fit(twin.points, twin.usable)
    sources = ping_pong(count, twin.frames, twin.usable)
    opening, width = _fit(track.opening, count), _fit(track.width, count)
    mouth = model.mouth_points(twin.points[sources], opening, width)
    driving = replace_mouth(twin.points[sources], mouth)
    with context.output_path(output).open("wb") as handle:
        np.savez_compressed(
            handle,
            format_version=np.int32(1),
            engine=np.asarray("classical"),
            fps=np.float32(fps),
            source_frames=sources,
            landmarks=driving.astype(np.float32),
            opening=opening.astype(np.float32),
            width=width.astype(np.float32),
            voiced=_fit(track.voiced.astype(np.float32), count) > 0.5,
        )
    voiced_share = float(np.mean(_fit(track.voiced.astype(np.float32), count) > 0.5))
    return StageResult(
        outputs=[output],
        metrics={"frames": count, "fps": fps, "voiced_share": round(voiced_share, 3), "source": track.source},
        message=(
            f"{count} driving frames at {fps} fps: mouth from the speech ({track.source}; voiced in "
            f"{voiced_share:.0%} of frames), the rest from the twin's video"
        ),
    )


def _fit(values: np.ndarray, count: int) -> np.ndarray:
    """The speech analysis gives round(duration x fps) frames too; guard against a one-frame rounding gap."""
    values = np.asarray(values)
    if len(values) >= count:
        return values[:count]
    return np.concatenate([values, np.repeat(values[-1:], count - len(values), axis=0)])
