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
from pipelines.th.driving import fit_length, frame_count, ping_pong, replace_mouth, save_driving
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
    opening, width = fit_length(track.opening, count), fit_length(track.width, count)
    voiced = fit_length(track.voiced, count)
    mouth = model.mouth_points(twin.points[sources], opening, width)
    driving = replace_mouth(twin.points[sources], mouth)
    save_driving(
        context.output_path(output),
        engine="classical",
        fps=fps,
        source_frames=sources,
        landmarks=driving,
        opening=opening.astype(np.float32),
        width=width.astype(np.float32),
        voiced=voiced,
    )
    voiced_share = float(np.mean(voiced))
    return StageResult(
        outputs=[output],
        metrics={"frames": count, "fps": fps, "voiced_share": round(voiced_share, 3), "source": track.source},
        message=(
            f"{count} driving frames at {fps} fps: mouth from the speech ({track.source}; voiced in "
            f"{voiced_share:.0%} of frames), the rest from the twin's video"
        ),
    )
