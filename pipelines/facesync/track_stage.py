"""The `track` stage of facesync preprocess: the twin's landmarks and speech on one timeline, pose normalised,
every window validated.

Reads th's `face/video_landmarks.npz` and the audio: the raw audio upload (`audio/audio.wav`) when there is one,
else the video's own sound track (`video/audio.wav`), as the seed did. `pipelines.media.timeline.reconcile` keeps
the frames the audio fully covers and the audio of those frames, and refuses audio whose length is more than
`max_mismatch_s` from the video's (an unrelated recording). Writes `facesync/track.npz` (`track_file`) and
`facesync/validation.json`: the twin's windows at stride = window, how many are valid and why the others are not.

A twin with no valid window still succeeds here (the report says why); the dataset task excludes it.

Parameters: window_frames (default 25), max_mismatch_s (0.5), the `validation.WindowThresholds`, and th's
sample_rate_hz, which must stay 16000.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.facesync import params as P
from pipelines.facesync.outputs import TRACK_NPZ, VALIDATION_JSON
from pipelines.facesync.pose import normalise_pose
from pipelines.facesync.track_file import Track, samples_per_frame, save_track
from pipelines.facesync.validation import WindowThresholds, count_reasons, validate_windows
from pipelines.facesync.windows import window_starts
from pipelines.media.timeline import reconcile
from pipelines.media.wav import read_wav_16k
from pipelines.th import outputs as th_files
from pipelines.th.face.landmarks_file import load_landmarks


class TrackStage:
    name = "track"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("landmarks", Source.PROCESSED, relative=th_files.VIDEO_LANDMARKS, optional=True),
        InputSpec("audio", Source.PROCESSED, relative=th_files.AUDIO_WAV, optional=True),
        InputSpec("video_audio", Source.PROCESSED, relative=th_files.VIDEO_AUDIO_WAV, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (OutputSpec(TRACK_NPZ), OutputSpec(VALIDATION_JSON))
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        # NOTE: never skipped: a twin without video or audio must fail its preprocess with the reason, so the
        # platform leaves it out of every dataset saying why (a skipped stage would only leave a file missing).
        return None

    def run(self, context: StageContext) -> StageResult:
        window = P.window_frames(context.params)
        thresholds = WindowThresholds.from_params(context.params)
        max_mismatch_s = P.max_mismatch_s(context.params)
        sample_rate_hz = P.sample_rate_hz(context.params)
        if "landmarks" not in context.inputs:
            raise BadInput(
                f"the twin has no {th_files.VIDEO_LANDMARKS}: facesync learns from a video of the person talking; "
                "upload one (a photo alone is not enough)"
            )
        audio_name, audio_path = _audio_input(context.inputs)
        context.progress(0.0, "reading landmarks and audio")
        landmarks = load_landmarks(context.inputs["landmarks"])
        audio = read_wav_16k(audio_path)
        samples_per_frame(landmarks.fps, sample_rate_hz)  # refuses rates that give fractional frames of audio
        timeline = reconcile(
            landmarks.frames,
            audio.shape[0],
            landmarks.fps,
            sample_rate_hz,
            max_mismatch_s=max_mismatch_s,
            what=f"{audio_name} against {th_files.VIDEO_MP4}",
        )
        context.check_cancelled()
        frames = timeline.frames
        usable = np.asarray(landmarks.usable[:frames], dtype=bool)
        points = np.asarray(landmarks.points[:frames], dtype=np.float32)
        pose = normalise_pose(points, usable)
        track = Track(
            landmarks=pose.landmarks,
            landmarks_px=points,
            centre=pose.centre,
            scale=pose.scale,
            audio=np.ascontiguousarray(audio[: timeline.samples], dtype=np.float32),
            usable=usable,
            reasons=np.asarray(landmarks.reasons[:frames], dtype="<U24"),
            fps=float(landmarks.fps),
            sample_rate_hz=sample_rate_hz,
            audio_source=audio_name,
            backend=landmarks.backend,
            dropped_video_frames=timeline.dropped_video_frames,
            dropped_audio_samples=timeline.dropped_audio_samples,
        )
        context.progress(0.5, "validating windows")
        starts = window_starts(frames, window, window)
        reasons = validate_windows(track, starts, window, thresholds)
        valid, discarded = count_reasons(reasons)
        save_track(context.output_path(TRACK_NPZ), track)
        report = _report(track, window, thresholds, starts, reasons)
        context.output_path(VALIDATION_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        context.progress(1.0, "track written")
        return StageResult(
            outputs=[TRACK_NPZ, VALIDATION_JSON],
            metrics={
                "frames_in": landmarks.frames,
                "frames": frames,
                "dropped_video_frames": timeline.dropped_video_frames,
                "dropped_audio_samples": timeline.dropped_audio_samples,
                "usable_frames": int(np.count_nonzero(usable)),
                "audio_source": audio_name,
                "scale_px": _rounded(pose.scale),
                "window_frames": window,
                "windows": int(starts.size),
                "valid_windows": valid,
                "discarded": discarded,
            },
            message=(
                f"{frames} frames ({timeline.duration_s:.2f} s) with {audio_name}; {valid}/{starts.size} windows of "
                f"{window} frames valid" + (f", discarded: {_listing(discarded)}" if discarded else "")
            ),
        )


def _audio_input(inputs: Mapping[str, Path]) -> tuple[str, Path]:
    """The raw audio upload when there is one (the seed's choice: a separate recording is usually the better
    microphone), else the video's own sound track."""
    if "audio" in inputs:
        return th_files.AUDIO_WAV, inputs["audio"]
    if "video_audio" in inputs:
        return th_files.VIDEO_AUDIO_WAV, inputs["video_audio"]
    raise BadInput(
        "the twin has no audio: no audio upload and its video has no sound track; upload the recording's audio "
        "(16 kHz or better) or a video recorded with sound"
    )


def _report(
    track: Track, window: int, thresholds: WindowThresholds, starts: np.ndarray, reasons: np.ndarray
) -> dict[str, Any]:
    valid, discarded = count_reasons(reasons)
    frame_reasons = dict(sorted(Counter(str(reason) for reason in track.reasons[~track.usable].tolist()).items()))
    return {
        "window_frames": window,
        "stride_frames": window,
        "fps": track.fps,
        "sample_rate_hz": track.sample_rate_hz,
        "samples_per_window": window * track.samples_per_frame,
        "audio_source": track.audio_source,
        "landmark_backend": track.backend,
        "frames": track.frames,
        "usable_frames": int(np.count_nonzero(track.usable)),
        "unusable_frames": frame_reasons,
        "dropped_video_frames": track.dropped_video_frames,
        "dropped_audio_samples": track.dropped_audio_samples,
        "scale_px": _rounded(track.scale),
        "thresholds": thresholds.to_dict(),
        "windows": int(starts.size),
        "valid": valid,
        "discarded": discarded,
        "window_reasons": [
            {"start_frame": int(start), "reason": str(reason)} for start, reason in zip(starts, reasons, strict=True)
        ],
    }


def _rounded(value: float) -> float | None:
    return round(value, 3) if np.isfinite(value) else None


def _listing(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in counts.items())
