"""The one validator of facesync windows, used by the per-twin report (`track` stage) and by the dataset.

A window of W frames is valid when all of these hold; otherwise it gets the FIRST reason that applies, in order:

    <frame reason>    a frame of the window is not usable: the landmarks stage's reason for the first such frame
                      (no_face, rival_face, face_too_small, low_confidence, turned_away, blurred); a frame marked
                      usable whose points are not finite counts as no_face. The model must never learn from a
                      pose the tracker did not see.
    landmark_jump     between two consecutive frames some landmark moved more than `max_landmark_jump` inter-ocular
                      distances (the twin's scale): a tracking failure, not a movement (natural talking measured
                      at most 0.18 per frame at 25 fps)
    audio_incomplete  the track holds fewer than W * samples-per-frame audio samples for the window
    silent            no 40 ms frame of the window reaches `silence_dbfs` RMS: no speech at all (a muted or
                      missing microphone), nothing for a speech-driven model to learn from
    clipped           more than `max_clipped_ratio` of the window's samples are at or above `clip_level` of full
                      scale: distorted speech
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from pipelines.base import BadInput
from pipelines.facesync.track_file import Track
from pipelines.th.face.quality import NO_FACE

VALID = "ok"
LANDMARK_JUMP = "landmark_jump"
AUDIO_INCOMPLETE = "audio_incomplete"
SILENT = "silent"
CLIPPED = "clipped"


@dataclass(frozen=True)
class WindowThresholds:
    """What makes a window invalid; each is a job parameter of the same name (track stage and dataset alike).

    max_landmark_jump   inter-ocular distances one landmark may move between consecutive frames
    silence_dbfs        a window is silent when no frame's RMS reaches this level, dB full scale. Speech
                        measured -33 to -18 dBFS per frame, codec silence and pauses -75 to -70: -50 keeps quiet
                        speech and room tone, and drops dead air
    clip_level          |sample| at or above this fraction of full scale counts as clipped
    max_clipped_ratio   a window with a larger share of clipped samples is discarded
    """

    max_landmark_jump: float = 0.5
    silence_dbfs: float = -50.0
    clip_level: float = 0.99
    max_clipped_ratio: float = 0.01

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> WindowThresholds:
        limits = {
            "max_landmark_jump": (0.0, 100.0),
            "silence_dbfs": (-120.0, 0.0),
            "clip_level": (0.0, 1.0),
            "max_clipped_ratio": (0.0, 1.0),
        }
        values: dict[str, float] = {}
        for spec in fields(cls):
            value = params.get(spec.name, getattr(cls, spec.name))
            low, high = limits[spec.name]
            numeric = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if not numeric or not low < value <= high:
                raise BadInput(
                    f"parameter {spec.name}={value!r} must be a number above {low:g} and at most {high:g} "
                    f"(default {getattr(cls, spec.name)})"
                )
            values[spec.name] = float(value)
        return cls(**values)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def validate_windows(track: Track, starts: np.ndarray, window_frames: int, thresholds: WindowThresholds) -> np.ndarray:
    """(N,) "<U24": "ok" or the reason each window [start, start + window_frames) is invalid (see the module).

    Vectorised: per-frame flags are computed once and summed over windows with cumulative sums, so the cost
    does not grow with the number of overlapping windows."""
    starts = np.asarray(starts, dtype=np.int64)
    frames = track.frames
    if starts.size and (starts.min() < 0 or starts.max() + window_frames > frames):
        raise ValueError(f"windows of {window_frames} frames at {starts.tolist()} exceed the track's {frames} frames")
    reasons = np.full(starts.shape, VALID, dtype="<U24")
    if not starts.size:
        return reasons
    stops = starts + window_frames
    per_frame = track.samples_per_frame
    audio = np.asarray(track.audio, dtype=np.float32)
    with_audio = min(frames, audio.shape[0] // per_frame)  # frames whose whole audio span is in the track
    blocks = audio[: with_audio * per_frame].reshape(with_audio, per_frame).astype(np.float64)

    loud = np.zeros(frames, dtype=bool)
    loud[:with_audio] = np.mean(blocks * blocks, axis=1) >= 10.0 ** (thresholds.silence_dbfs / 10.0)
    clipped = np.zeros(frames, dtype=np.int64)
    clipped[:with_audio] = np.count_nonzero(np.abs(blocks) >= thresholds.clip_level, axis=1)
    clipped_ratio = _window_sums(clipped, starts, stops) / (window_frames * per_frame)

    # Each check overwrites the later ones, so the first reason in the module's order wins.
    reasons[clipped_ratio > thresholds.max_clipped_ratio] = CLIPPED
    reasons[_window_sums(loud, starts, stops) == 0] = SILENT
    reasons[stops > with_audio] = AUDIO_INCOMPLETE
    jumped = np.zeros(frames, dtype=bool)  # jumped[t]: a landmark jumped between frames t - 1 and t
    jumped[1:] = _landmark_jumps(track) > thresholds.max_landmark_jump
    reasons[_window_sums(jumped, starts + 1, stops) > 0] = LANDMARK_JUMP
    first_bad, frame_reasons = _first_unusable_frame(track)
    face_bad = first_bad[starts] < stops
    reasons[face_bad] = frame_reasons[first_bad[starts][face_bad]]
    return reasons


def count_reasons(reasons: np.ndarray) -> tuple[int, dict[str, int]]:
    """(valid windows, {reason: discarded windows}) with the reasons sorted by name."""
    counts = Counter(str(reason) for reason in np.asarray(reasons).tolist())
    valid = counts.pop(VALID, 0)
    return valid, dict(sorted(counts.items()))


def _landmark_jumps(track: Track) -> np.ndarray:
    """(T - 1,) the largest landmark move between consecutive frames, in units of the twin's scale (0 where a
    frame has no face: the face check reports those)."""
    if track.frames < 2 or not (math.isfinite(track.scale) and track.scale > 0):
        return np.zeros(max(0, track.frames - 1))
    steps = np.diff(np.asarray(track.landmarks_px, dtype=np.float64), axis=0)
    with np.errstate(invalid="ignore"):
        moves: np.ndarray = np.sqrt((steps * steps).sum(axis=2)).max(axis=1) / track.scale
    no_face_is_no_jump: np.ndarray = np.nan_to_num(moves, nan=0.0)
    return no_face_is_no_jump


def _first_unusable_frame(track: Track) -> tuple[np.ndarray, np.ndarray]:
    """(T,) index of the first unusable frame at or after each frame (T when none), and (T,) each frame's reason
    for being unusable."""
    frames = track.frames
    finite = np.isfinite(np.asarray(track.landmarks_px)).all(axis=(1, 2))
    usable = np.asarray(track.usable, dtype=bool)
    reasons = np.where(usable, NO_FACE, np.asarray(track.reasons, dtype="<U24"))  # usable but not finite: no face
    indices = np.where(usable & finite, frames, np.arange(frames))
    first_bad: np.ndarray = np.minimum.accumulate(indices[::-1])[::-1]
    return first_bad, reasons


def _window_sums(per_frame: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Sum of `per_frame` over [start, stop) for each window."""
    cumulative = np.concatenate(([0], np.cumsum(per_frame, dtype=np.int64)))
    sums: np.ndarray = cumulative[stops] - cumulative[starts]
    return sums
