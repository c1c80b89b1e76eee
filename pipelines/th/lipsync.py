"""How well a rendered talking head's mouth follows its speech, measured on the output video alone.

Any engine's output can be scored, since nothing of the engine is used (not its driving landmarks, not its
speech analysis): the mouth is found again in every rendered frame and compared with the audio.

    mouth opening   per frame, by the MediaPipe landmark backend: the inner-lip gap (mean of the iBUG 61-67,
                    62-66 and 63-65 distances) divided by the inter-ocular distance (36-45), so it does not depend
                    on the face's size in the picture. The eyes, not the mouth width (48-54), are the ruler: the
                    mouth widens and narrows as it talks ("ee" against "oo"), the eyes' distance does not.
                    Frames without a face are NaN and take no part.
    envelope        per frame, the speech's short-time level: RMS in dB (high-passed at 80 Hz, so that hum and
                    DC do not count as voice) over a one-frame window centred on the frame's centre time. Levels
                    more than 30 dB below the speech's loud level (the 95th percentile of the frames' levels) are
                    room noise, not voice, and are raised to that floor. Frames the audio does not cover are NaN.
    silent frame    a frame under that floor, whose neighbours are under it too (or missing): a pause, not the
                    closure of one consonant, and not a frame on the edge of speech where the mouth still moves.
    closed mouth    an opening under 20 % of the mouth's own 95th-percentile opening, or under CLOSED_MIN_OPENING
                    (0.03 of the eye distance, about 3 mm), whichever is larger: a relative rule alone would call
                    landmark jitter "open" for a mouth that hardly moves.

The score is the Pearson correlation of opening and envelope at offsets -max..+max frames. Sign convention:
offset k pairs the opening of frame i with the envelope of frame i - k, so a positive offset means the mouth
LAGS the audio (moves k frames after the sound), a negative one that it leads. Every offset is computed over the
same video frames (max..n-max-1) so that the correlations compare fairly. Natural speech peaks slightly negative:
lips move into place before the sound comes (talking_512.mp4, a real recording in sync: best at -2 frames).
Measured on talking_512.mp4 with its own audio: correlation 0.29 at -2 frames, 0.20 at 0, mouth closed in 30 % of
its 30 silent frames. Real speech is far from a puppet's "mouth open = loud" (nasals are loud with closed lips; a
speaker may pause with lips apart), so a real person does not pass the default thresholds, which are meant for
engines whose mouth is made from the speech.
Cost, 512x512 at 25 fps on 2 cores: 0.16 s per second of video (the landmark model; decoding the audio and the
statistics take 10 ms), plus about 1 s to load MediaPipe when no backend is passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import av
import numpy as np
from scipy import signal

from pipelines.base import BadInput
from pipelines.media.frames import read_frames, video_info
from pipelines.th.face.backends import LandmarkBackend, open_backend
from pipelines.th.face.measures import inter_ocular
from pipelines.th.face.types import FaceDetection

SAMPLE_RATE_HZ = 16000
HIGH_PASS_HZ = 80.0
LOUD_PERCENTILE = 95.0
SILENCE_BELOW_LOUD_DB = 30.0
CLOSED_FRACTION = 0.2
CLOSED_MIN_OPENING = 0.03
MIN_PAIRS = 10
"""Fewer frames than this with both a face and audio, at an offset: no correlation is reported for it."""

INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


@dataclass(frozen=True)
class LipSyncScore:
    """The lip-sync of one video. None where a value cannot be measured (no face, no pause, too few frames).

    correlation          Pearson correlation of mouth opening and speech envelope at the best offset
    offset_frames        that offset; > 0: the mouth lags the audio, < 0: it leads (see the module docstring)
    correlation_at_zero  the correlation with no offset
    silent_closed_share  share of the silent frames (with a face) in which the mouth is closed
    frames, face_frames  frames of the video, and those in which a face was found
    silent_frames        silent frames with a face (the share's denominator)
    closed_threshold     the opening under which the mouth counts as closed (fraction of the eye distance)
    correlations         the correlation at each offset, -max_offset_frames..+max_offset_frames
    """

    correlation: float | None
    offset_frames: int | None
    correlation_at_zero: float | None
    silent_closed_share: float | None
    frames: int
    face_frames: int
    silent_frames: int
    closed_threshold: float | None
    max_offset_frames: int
    correlations: tuple[float | None, ...] = field(repr=False)
    fps: float | None = None

    @property
    def offset_ms(self) -> float | None:
        if self.offset_frames is None or not self.fps:
            return None
        return 1000.0 * self.offset_frames / self.fps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats rounded to 4 digits, None for what was not measured (never NaN)."""
        offsets = range(-self.max_offset_frames, self.max_offset_frames + 1)
        return {
            "correlation": _json(self.correlation),
            "offset_frames": self.offset_frames,
            "offset_ms": _json(self.offset_ms, 1),
            "correlation_at_zero": _json(self.correlation_at_zero),
            "silent_closed_share": _json(self.silent_closed_share),
            "frames": self.frames,
            "face_frames": self.face_frames,
            "silent_frames": self.silent_frames,
            "closed_threshold": _json(self.closed_threshold),
            "fps": _json(self.fps, 3),
            "correlations": {str(k): _json(c) for k, c in zip(offsets, self.correlations, strict=True)},
        }


@dataclass(frozen=True)
class LipSyncThresholds:
    """What a lip-synced output must reach. An offset is judged only where the correlation passes: without a
    match, the best offset is noise. A video without pauses has no silent_closed_share and is not judged on it."""

    min_correlation: float = 0.5
    max_abs_offset_frames: int = 1
    min_silent_closed_share: float = 0.7
    min_face_share: float = 0.9

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> LipSyncThresholds:
        """Thresholds from a run's `lipsync` parameters (any subset of the fields; the rest keep their defaults).
        BadInput names an unknown key or a value that is not a number."""
        values: dict[str, Any] = {}
        known = {item.name for item in fields(cls)}
        for key, value in (params or {}).items():
            if key not in known:
                raise BadInput(f"unknown lipsync parameter {key!r}; use any of {', '.join(sorted(known))}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise BadInput(f"lipsync parameter {key!r} must be a number, not {value!r}")
            if key == "max_abs_offset_frames" and value != int(value):
                raise BadInput(f"lipsync parameter {key!r} counts frames: give a whole number, not {value!r}")
            values[key] = int(value) if key == "max_abs_offset_frames" else float(value)
        return cls(**values)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def flags(self, score: LipSyncScore) -> list[str]:
        """One sentence per failed check; empty when the score passes."""
        if score.face_frames == 0:
            return [f"no face was found in any of the {score.frames} frames, so the lip-sync cannot be measured"]
        found: list[str] = []
        face_share = score.face_frames / score.frames
        if face_share < self.min_face_share:
            found.append(
                f"a face was found in only {face_share:.0%} of the frames ({score.face_frames} of {score.frames}); "
                f"at least {self.min_face_share:.0%} expected"
            )
        if score.correlation is None:
            found.append(
                "the lip-sync correlation cannot be measured: too few frames with both a face and audio, or a mouth "
                "or a speech level that never changes"
            )
        elif score.correlation < self.min_correlation:
            found.append(f"lip-sync correlation {score.correlation:.2f} is below {self.min_correlation:g}")
        elif score.offset_frames is not None and abs(score.offset_frames) > self.max_abs_offset_frames:
            way = "lags" if score.offset_frames > 0 else "leads"
            ms = f" ({abs(score.offset_ms):.0f} ms)" if score.offset_ms is not None else ""
            count = abs(score.offset_frames)
            found.append(
                f"the mouth {way} the audio by {count} frame{'s' if count != 1 else ''}{ms}; at most "
                f"{self.max_abs_offset_frames} allowed"
            )
        share = score.silent_closed_share
        if share is not None and share < self.min_silent_closed_share:
            found.append(
                f"the mouth is closed in only {share:.0%} of the {score.silent_frames} silent frames; at least "
                f"{self.min_silent_closed_share:.0%} expected"
            )
        return found


def lipsync_score(
    video: Path,
    audio: Path | None = None,
    *,
    fps: float | None = None,
    max_offset_frames: int = 5,
    backend: LandmarkBackend | None = None,
) -> LipSyncScore:
    """Score `video`'s lip-sync against `audio` (any file FFmpeg decodes, taken to start with the video's first
    frame), or against the video's own audio track when None (its start time relative to the video counts, as a
    player would play it). `fps` overrides the video's frame rate; `backend` is a landmark backend to reuse (it is
    reset, not closed), else a MediaPipe one is opened for the call. BadInput if a file is unreadable or the
    video has no audio track and none is given."""
    video = Path(video)
    info = video_info(video)
    rate = float(fps) if fps is not None else info.fps
    if rate <= 0:
        raise BadInput(f"{video.name!r} does not say its frame rate; pass fps=")
    opening = mouth_openings(video, backend=backend)
    if audio is None:
        samples, audio_start = decode_audio(video)
        start = audio_start - _first_video_time(video)
    else:
        samples, _ = decode_audio(Path(audio))
        start = 0.0
    envelope = speech_envelope(samples, fps=rate, frames=len(opening), start_s=start)
    return score_from_series(opening, envelope, max_offset_frames=max_offset_frames, fps=rate)


def mouth_opening(points68: np.ndarray) -> float:
    """The inner-lip gap of one face divided by its inter-ocular distance (see the module docstring)."""
    points = np.asarray(points68, dtype=np.float64)
    gap = np.mean([np.hypot(*(points[a] - points[b])) for a, b in INNER_LIP_PAIRS])
    eyes = inter_ocular(points)
    return float(gap / eyes) if eyes > 0 else math.nan


def mouth_openings(video: Path, *, backend: LandmarkBackend | None = None) -> np.ndarray:
    """(frames,) float64 mouth opening of every frame of `video`, NaN where no face was found."""
    owned = backend is None
    landmarks = open_backend("mediapipe", max_faces=1, video=True) if backend is None else backend
    values: list[float] = []
    try:
        landmarks.reset()
        for batch in read_frames(video, exact_colour=False):  # analysis only: the fast colour conversion
            for faces in landmarks.detect(list(batch)):
                values.append(mouth_opening(_largest(faces).points) if faces else math.nan)
    finally:
        if owned:
            landmarks.close()
    return np.asarray(values, dtype=np.float64)


def decode_audio(path: Path) -> tuple[np.ndarray, float]:
    """(16 kHz mono float32 samples, start time in seconds of the first one) of `path`'s first audio stream."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path.name!r} does not exist; give the speech file the video was made from")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE_HZ)
    chunks: list[np.ndarray] = []
    start: float | None = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise BadInput(f"{path.name!r} has no audio track; pass the speech it was made from as `audio`")
            for frame in container.decode(container.streams.audio[0]):
                if start is None and frame.time is not None:
                    start = float(frame.time)
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise BadInput(f"the audio of {path.name!r} cannot be decoded ({exc}); give a readable audio file") from exc
    if not chunks:
        raise BadInput(f"{path.name!r} has an audio track with no sound in it; give the speech as `audio`")
    return np.concatenate(chunks).astype(np.float32), start or 0.0


def speech_envelope(samples: np.ndarray, *, fps: float, frames: int, start_s: float = 0.0) -> np.ndarray:
    """(frames,) speech level in dB per video frame, noise raised to the silence floor, NaN where no audio.

    `samples` are 16 kHz mono; `start_s` is when the first sample plays, in seconds after the first video frame.
    Frame i shows from i/fps to (i+1)/fps; its level is the RMS over that span (one frame, centred on its centre),
    NaN when the audio covers less than half of it.
    """
    audio = np.asarray(samples, dtype=np.float64)
    if len(audio) > 12:  # the filter needs a few samples; shorter "speech" is silence anyway
        audio = signal.sosfilt(signal.butter(2, HIGH_PASS_HZ, "highpass", fs=SAMPLE_RATE_HZ, output="sos"), audio)
    energy = np.concatenate([[0.0], np.cumsum(audio * audio)])
    centres = (np.arange(frames) + 0.5) / fps - start_s
    half = 0.5 * SAMPLE_RATE_HZ / fps
    low = np.clip(np.round(centres * SAMPLE_RATE_HZ - half), 0, len(audio)).astype(np.int64)
    high = np.clip(np.round(centres * SAMPLE_RATE_HZ + half), 0, len(audio)).astype(np.int64)
    covered = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        power = (energy[high] - energy[low]) / covered
        level: np.ndarray = 10.0 * np.log10(np.maximum(power, 1e-20))
    level[covered < half] = math.nan  # fewer than half a frame's samples
    if np.isfinite(level).any():
        level = np.maximum(level, silence_floor_db(level))  # NaN stays NaN
    return level


def silence_floor_db(envelope_db: np.ndarray) -> float:
    """The level under which a frame is silent: SILENCE_BELOW_LOUD_DB under the LOUD_PERCENTILE of the levels."""
    finite = np.asarray(envelope_db, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return math.nan
    return float(np.percentile(finite, LOUD_PERCENTILE) - SILENCE_BELOW_LOUD_DB)


def score_from_series(
    opening: Sequence[float] | np.ndarray,
    envelope_db: Sequence[float] | np.ndarray,
    *,
    max_offset_frames: int = 5,
    fps: float | None = None,
) -> LipSyncScore:
    """The score from per-frame mouth openings and speech levels in dB (same length, NaN = missing), as
    `lipsync_score` measures them; see the module docstring for the rules."""
    mouth = np.asarray(opening, dtype=np.float64)
    level = np.asarray(envelope_db, dtype=np.float64)
    if mouth.ndim != 1 or mouth.shape != level.shape:
        raise ValueError(f"opening and envelope must be 1-D and of one length, got {mouth.shape} and {level.shape}")
    if max_offset_frames < 0:
        raise ValueError(f"max_offset_frames must be >= 0, not {max_offset_frames}")
    frames = len(mouth)
    face = np.isfinite(mouth)
    floor = silence_floor_db(level)
    level = np.maximum(level, floor) if math.isfinite(floor) else level

    offsets = range(-max_offset_frames, max_offset_frames + 1)
    window = np.arange(max_offset_frames, frames - max_offset_frames)
    correlations = tuple(_pearson(mouth[window], level[window - k]) for k in offsets)
    measured = [(c, k) for c, k in zip(correlations, offsets, strict=True) if c is not None]
    best, offset = max(measured, key=lambda ck: (ck[0], -abs(ck[1]))) if measured else (None, None)

    share, silent_count, closed = None, 0, None
    if face.any():
        closed = max(CLOSED_FRACTION * float(np.percentile(mouth[face], 95)), CLOSED_MIN_OPENING)
        silent = _silent(level, floor) & face
        silent_count = int(silent.sum())
        if silent_count:
            share = float(np.mean(mouth[silent] < closed))
    return LipSyncScore(
        correlation=best,
        offset_frames=offset,
        correlation_at_zero=correlations[max_offset_frames],
        silent_closed_share=share,
        frames=frames,
        face_frames=int(face.sum()),
        silent_frames=silent_count,
        closed_threshold=closed,
        max_offset_frames=max_offset_frames,
        correlations=correlations,
        fps=fps,
    )


def _silent(level: np.ndarray, floor: float) -> np.ndarray:
    """Frames at the silence floor whose neighbours are too (a missing neighbour, or no audio, does not count)."""
    if not math.isfinite(floor):
        return np.zeros(len(level), dtype=bool)
    quiet = np.isfinite(level) & (level <= floor)
    loud = np.isfinite(level) & ~quiet
    padded = np.concatenate([[False], loud, [False]])
    silent: np.ndarray = quiet & ~padded[:-2] & ~padded[2:]
    return silent


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < MIN_PAIRS:
        return None
    x, y = a[both], b[both]
    if any(np.ptp(v) <= 1e-9 * (1.0 + float(np.abs(v).max())) for v in (x, y)):
        return None  # one of the two never changes: no correlation to speak of
    x, y = x - x.mean(), y - y.mean()
    return float(np.dot(x, y) / math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y))))


def _largest(faces: Sequence[FaceDetection]) -> FaceDetection:
    return max(faces, key=lambda face: face.area)


def _first_video_time(video: Path) -> float:
    """When the first video frame is shown, seconds (a container may start its streams at different times)."""
    with av.open(str(video)) as container:
        for frame in container.decode(container.streams.video[0]):
            return float(frame.time) if frame.time is not None else 0.0
    return 0.0


def _json(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


__all__ = [
    "LipSyncScore",
    "LipSyncThresholds",
    "decode_audio",
    "lipsync_score",
    "mouth_opening",
    "mouth_openings",
    "score_from_series",
    "speech_envelope",
]
