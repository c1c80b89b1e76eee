"""`facesync/track.npz`: one twin's landmarks and audio on one timeline, what the dataset task cuts windows from.

Arrays per kept frame (T frames of the 25 fps video that the audio fully covers, `pipelines.media.timeline`):

    landmarks        (T, 68, 2) float32  pose-normalised points (`pose`), NaN where the frame has no face
    landmarks_px     (T, 68, 2) float32  the same points in video pixels (the landmarks stage's smoothed points)
    centre           (T, 2) float32      the per-frame centre subtracted, pixels
    scale            ()  float64         the twin's inter-ocular distance, pixels (landmarks = (px - centre) / scale)
    audio            (T * sr / fps,) float32  the speech in [-1, 1), cut to the frames: frame i is
                                         audio[i * spf:(i + 1) * spf], spf = samples per frame (640 at 25 fps)
    usable           (T,) bool           the landmarks stage's decision per frame
    reasons          (T,) <U24           "ok" or why not (`pipelines.th.face.quality`)
    fps, sample_rate_hz                  the rates
    audio_source     str                 which preprocess file the audio came from (audio/audio.wav or video/audio.wav)
    backend          str                 the landmark backend that found the points (mediapipe or face_alignment)
    dropped_video_frames, dropped_audio_samples   what the timeline cut off the end
    format_version   int32
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipelines.base import BadInput
from pipelines.facesync.npz import write_npz

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class Track:
    landmarks: np.ndarray
    landmarks_px: np.ndarray
    centre: np.ndarray
    scale: float
    audio: np.ndarray
    usable: np.ndarray
    reasons: np.ndarray
    fps: float
    sample_rate_hz: int
    audio_source: str
    backend: str = ""
    dropped_video_frames: int = 0
    dropped_audio_samples: int = 0

    @property
    def frames(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def samples_per_frame(self) -> int:
        return samples_per_frame(self.fps, self.sample_rate_hz)


def samples_per_frame(fps: float, sample_rate_hz: int) -> int:
    """Audio samples per video frame; BadInput when the rates do not give a whole number (every window must have
    the same sample count, and 16 kHz at 25 fps gives 640)."""
    per_frame = Fraction(sample_rate_hz) / Fraction(str(fps))
    if per_frame.denominator != 1:
        raise BadInput(
            f"{sample_rate_hz} Hz audio at {fps:g} fps is {float(per_frame):.2f} samples per frame, not a whole "
            "number: preprocess the twin with a frame rate that divides the sample rate (the default fps=25 does)"
        )
    return int(per_frame)


_ARRAYS = ("landmarks", "landmarks_px", "centre", "audio", "usable", "reasons")
_SCALARS = {
    "scale": float,
    "fps": float,
    "sample_rate_hz": int,
    "audio_source": str,
    "backend": str,
    "dropped_video_frames": int,
    "dropped_audio_samples": int,
}


def save_track(path: Path, track: Track) -> None:
    arrays: dict[str, np.ndarray] = {name: np.asarray(getattr(track, name)) for name in _ARRAYS}
    arrays["reasons"] = np.asarray(track.reasons, dtype="<U24")
    arrays.update({name: np.asarray(kind(getattr(track, name))) for name, kind in _SCALARS.items()})
    arrays["format_version"] = np.asarray(FORMAT_VERSION, dtype=np.int32)
    write_npz(path, arrays)


def load_track(path: Path, label: str = "facesync/track.npz") -> Track:
    """Read a track; BadInput naming `label` when it is unreadable, of another format or inconsistent."""
    fix = "run the twin's facesync preprocess again"
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise BadInput(f"{label} has track format {version}, this platform reads {FORMAT_VERSION}: {fix}")
            values: dict[str, object] = {name: data[name] for name in _ARRAYS}
            values.update({name: kind(data[name].item()) for name, kind in _SCALARS.items()})
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise BadInput(f"{label} is not a readable facesync track ({exc}): {fix}") from exc
    track = Track(**values)  # type: ignore[arg-type]
    frames = track.frames
    expected_audio = frames * track.samples_per_frame
    shapes_ok = (
        track.landmarks.shape == (frames, 68, 2)
        and track.landmarks_px.shape == (frames, 68, 2)
        and track.centre.shape == (frames, 2)
        and track.usable.shape == (frames,)
        and track.reasons.shape == (frames,)
        and track.audio.ndim == 1
    )
    if not shapes_ok:
        raise BadInput(f"{label} has arrays of inconsistent shapes: {fix}")
    if track.audio.shape[0] > expected_audio:
        raise BadInput(f"{label} holds {track.audio.shape[0]} audio samples for {frames} frames: {fix}")
    return track
