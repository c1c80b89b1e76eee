"""One rule for how many video frames and audio samples belong together, used by every dataset model.

The seed teams each cut audio and video their own way, and their counts disagreed ("the audio features have 3
more frames than the video"). Here there is one rule:

- Frame `i` of a video at `fps` covers the time span [i / fps, (i + 1) / fps).
- A frame is kept only when the audio covers its whole span, and audio after the last kept frame is dropped, so
  `frames = min(video_frames, floor(audio_samples * fps / sample_rate_hz))` and the audio of frame `i` is the
  samples [round(i * sr / fps), round((i + 1) * sr / fps)).
- Audio features computed at any rate are put on the video's clock by `align_features`: one row per kept frame,
  always exactly `frames` rows, or BadInput when the features do not cover the frames.
- When audio and video lengths differ by more than `max_mismatch_s` they are not one recording: BadInput.

Fractional rates (21.5 fps) are handled exactly with `fractions.Fraction`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pipelines.base import BadInput

#: audio and video of one recording differ by container padding, not by more than this
DEFAULT_MAX_MISMATCH_S = 0.5


def _rate(value: float) -> Fraction:
    """An exact rate: 25 -> 25, 21.5 -> 43/2, 29.97 -> 2997/100 (rates come from parameters, never noisy floats)."""
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


@dataclass(frozen=True)
class Timeline:
    """`frames` video frames at `fps` paired with `frames / fps` seconds of audio at `sample_rate_hz`."""

    fps: float
    sample_rate_hz: int
    frames: int
    dropped_video_frames: int = 0  # video frames past the end of the audio
    dropped_audio_samples: int = 0  # audio samples past the end of the last kept frame

    @property
    def samples(self) -> int:
        """Audio samples the kept frames cover (the audio is cut to this length)."""
        return self.sample_at(self.frames)

    @property
    def duration_s(self) -> float:
        return float(self.frames / _rate(self.fps))

    def sample_at(self, frame: int) -> int:
        """The first audio sample of frame `frame` (and the end of frame `frame - 1`)."""
        return int(round(Fraction(frame) * self.sample_rate_hz / _rate(self.fps)))

    def audio_span(self, frame: int) -> tuple[int, int]:
        """[start, stop) sample indices of frame `frame`'s audio."""
        if not 0 <= frame < self.frames:
            raise IndexError(f"frame {frame} is outside 0..{self.frames - 1}")
        return self.sample_at(frame), self.sample_at(frame + 1)

    def frame_times_s(self) -> np.ndarray:
        """(frames,) the centre time of each frame in seconds: where per-frame audio features are read."""
        return (np.arange(self.frames, dtype=np.float64) + 0.5) / float(_rate(self.fps))

    def chunks(self, duration_s: float) -> list[tuple[int, int]]:
        """Whole chunks of `duration_s` seconds as [start, stop) frame ranges; a shorter tail is not a chunk.

        `duration_s * fps` must be a whole number of frames (10 s at 21.5 fps = 215 frames), so every chunk has
        the same frame and sample counts.
        """
        per_chunk = Fraction(str(duration_s)) * _rate(self.fps)
        if per_chunk.denominator != 1 or per_chunk <= 0:
            raise BadInput(
                f"a chunk of {duration_s} s at {self.fps} fps is {float(per_chunk):g} frames, not a whole number: "
                "choose a duration that is a whole number of frames"
            )
        size = int(per_chunk)
        return [(start, start + size) for start in range(0, self.frames - size + 1, size)]


def reconcile(
    video_frames: int,
    audio_samples: int,
    fps: float,
    sample_rate_hz: int,
    *,
    max_mismatch_s: float = DEFAULT_MAX_MISMATCH_S,
    what: str = "the video",
) -> Timeline:
    """Apply the rule: the frames the audio fully covers, and the audio those frames cover.

    Raises BadInput (naming `what`) when either stream is empty or their lengths differ by more than
    `max_mismatch_s` seconds: audio and video that far apart are not one recording.
    """
    if fps <= 0 or sample_rate_hz <= 0:
        raise ValueError(f"rates must be positive, not fps={fps} and sample_rate_hz={sample_rate_hz}")
    rate = _rate(fps)
    if video_frames <= 0:
        raise BadInput(f"{what} has no video frames: upload a video of the person")
    if audio_samples <= 0:
        raise BadInput(f"{what} has no audio: upload a video recorded with sound")
    video_s = float(video_frames / rate)
    audio_s = audio_samples / sample_rate_hz
    if abs(video_s - audio_s) > max_mismatch_s:
        raise BadInput(
            f"{what}: its video lasts {video_s:.2f} s but its audio {audio_s:.2f} s (more than {max_mismatch_s} s "
            "apart), so they are not one recording; re-export the clip with its own sound track"
        )
    covered = math.floor(Fraction(audio_samples) * rate / sample_rate_hz)
    frames = min(video_frames, covered)
    timeline = Timeline(fps=fps, sample_rate_hz=sample_rate_hz, frames=frames)
    return Timeline(
        fps=fps,
        sample_rate_hz=sample_rate_hz,
        frames=frames,
        dropped_video_frames=video_frames - frames,
        dropped_audio_samples=audio_samples - timeline.samples,
    )


def align_features(features: np.ndarray, feature_rate_hz: float, timeline: Timeline) -> np.ndarray:
    """Put per-step audio features (T, D) sampled at `feature_rate_hz` (row t at time t / rate) on the video's
    clock: one row per kept frame, read at the frame's centre by linear interpolation.

    Always returns exactly `timeline.frames` rows. Raises BadInput when the features end more than one feature
    step before the last frame's centre (they were computed from shorter audio).
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (T, D) array, not shape {features.shape}")
    times = timeline.frame_times_s() * feature_rate_hz
    last = features.shape[0] - 1
    if timeline.frames and times[-1] > last + 1.0:
        raise BadInput(
            f"the audio features cover {features.shape[0] / feature_rate_hz:.2f} s but the video frames need "
            f"{timeline.duration_s:.2f} s: compute the features from the whole audio track"
        )
    positions = np.clip(times, 0.0, float(last))
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, last)
    weight = (positions - low).astype(np.float32)[:, None]
    aligned: np.ndarray = features[low] * (1.0 - weight) + features[high] * weight
    return aligned.astype(np.float32)
