"""Speech -> mouth opening and width per video frame, by rules (no learned face weights).

    voice activity  webrtcvad (10 ms frames) AND an energy gate, then gaps under MAX_GAP_S inside speech are
                    bridged (a stop consonant must not shut the mouth) and blips under MIN_RUN_S dropped. Frames
                    with no voiced 10 ms step at all are silent, and their opening is exactly 0.
    envelope        short-time RMS (30 ms window, 10 ms steps, high-passed at 80 Hz) in dB, mapped to 0..1 between
                    the 5th and 95th percentile of the steps heard as speech: the loudness drives the jaw,
                    syllable by syllable.
    phones          pocketsphinx phone timing (`phones.py`) -> visemes (`visemes.py`): each phone scales the
                    opening (gain), may cap it (P B M close the lips, F V nearly), and sets the lip width. Without
                    pocketsphinx, or when it fails, the envelope alone drives the opening with the "unknown"
                    viseme's gain and a neutral width (`source` says which).
    coarticulation  the gains and widths are smoothed over time so neighbouring shapes blend and the mouth
                    anticipates the next one. The smoothing is zero-phase (a one-pole filter run forwards then
                    backwards: a symmetric kernel exp(-|t|/tau), two poles, no delay), so the mouth neither lags
                    nor leads the sound; the envelope is smoothed less than the shapes, to keep the 4-5 Hz
                    syllable rhythm.

Every quantity is computed on 10 ms steps, then averaged over each video frame's span [i/fps, (i+1)/fps), the span
`pipelines.th.lipsync` measures the speech level over.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import webrtcvad
from scipy import signal

from pipelines.base import BadInput
from pipelines.th.classical.phones import PhonesUnavailable, decode_phones
from pipelines.th.classical.visemes import VISEMES, Phone, viseme_of

SAMPLE_RATE_HZ = 16000
HOP_S = 0.01
HOP = int(SAMPLE_RATE_HZ * HOP_S)
RMS_WINDOW_S = 0.03
HIGH_PASS_HZ = 80.0
VAD_MODE = 2  # 0 (lenient) .. 3 (aggressive); 2 keeps soft word ends without taking room noise for speech
ABSOLUTE_FLOOR_DB = -60.0  # dBFS: quieter than this is never speech
GATE_BELOW_LOUD_DB = 35.0  # and nothing this far under the loud level (95th percentile)...
GATE_ABOVE_NOISE_DB = 6.0  # ...or within this of the noise floor (median level where webrtcvad hears no speech)
MAX_GAP_S = 0.15  # shorter gaps inside speech are bridged; longer ones are pauses and close the mouth
MIN_RUN_S = 0.03  # shorter bursts of "speech" are clicks
ENVELOPE_LOW_PERCENTILE, ENVELOPE_HIGH_PERCENTILE = 5.0, 95.0
ENVELOPE_MIN_SPAN_DB = 15.0  # a steady sound (a held vowel) is fully open, not noise stretched to 0..1
ENVELOPE_TAU_S = 0.015  # light: at 5 Hz the envelope keeps ~80 % of its swing
SHAPE_TAU_S = 0.035  # coarticulation: a phone's shape reaches ~35 ms into its neighbours
MAX_ABS_SAMPLE = 4.0  # beyond this the samples are not [-1, 1] floats (PCM16 values stored as floats?)

Source = Literal["phones", "envelope"]


@dataclass(frozen=True, eq=False)
class SpeechAnalysis:
    """The speech on 10 ms steps (step k covers [k, k+1) x 10 ms): level in dBFS, envelope 0..1, voice activity."""

    level_db: np.ndarray
    envelope: np.ndarray
    voiced: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.voiced)


@dataclass(frozen=True, eq=False)
class MouthTrack:
    """Per video frame (T = round(duration x fps)): the mouth the speech asks for.

    opening   (T,) 0 closed .. 1 a wide-open "ah" at the loudest; speech mostly stays under 0.6; exactly 0 in
              silent frames
    width     (T,) -1 rounded (OO) .. +1 spread (EE), 0 neutral
    voiced    (T,) bool, the frame holds speech (any voiced 10 ms step)
    envelope  (T,) the loudness envelope 0..1 the opening was made from
    source    "phones" when pocketsphinx timed the shapes, "envelope" when the loudness alone drove them
    fallback_reason  why not "phones" (None when phones were used)
    timings   seconds of compute per part ("analysis", "phones", "shapes", "total")
    """

    opening: np.ndarray
    width: np.ndarray
    voiced: np.ndarray
    envelope: np.ndarray
    source: Source
    fps: float
    phones: tuple[Phone, ...] = ()
    fallback_reason: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return len(self.opening)


def mouth_track(audio: np.ndarray, sample_rate: int, fps: float, *, use_phones: bool = True) -> MouthTrack:
    """The mouth per video frame for `audio` (16 kHz mono float samples in [-1, 1]) at `fps` frames per second.

    BadInput names the problem (empty, not mono, not finite, wrong rate, not floats). With `use_phones` the shapes
    are timed by pocketsphinx when it is available; otherwise (or with use_phones=False) by the loudness alone.
    """
    started = time.perf_counter()
    samples = _checked_audio(audio, sample_rate)
    frames = _frame_count(len(samples), fps)
    analysis = analyse_speech(samples, sample_rate)
    analysed = time.perf_counter()
    phones: list[Phone] | None = None
    reason: str | None = "phones were not asked for (use_phones=False)"
    if use_phones and not analysis.voiced.any():
        reason = "no speech was heard, so no phones were decoded"
    elif use_phones:
        try:
            phones = decode_phones(samples, sample_rate)
            reason = None if phones else "pocketsphinx found no phones"
        except PhonesUnavailable as exc:
            reason = str(exc)
    decoded = time.perf_counter()
    track = mouth_from_analysis(analysis, phones or None, fps, frames, fallback_reason=reason)
    finished = time.perf_counter()
    timings = {
        "analysis": analysed - started,
        "phones": decoded - analysed,
        "shapes": finished - decoded,
        "total": finished - started,
    }
    return dataclasses.replace(track, timings=timings)


def analyse_speech(audio: np.ndarray, sample_rate: int) -> SpeechAnalysis:
    """Level, envelope and voice activity of `audio` on 10 ms steps (see the module docstring)."""
    samples = _checked_audio(audio, sample_rate)
    steps = math.ceil(len(samples) / HOP)
    samples = _high_passed(samples)
    level = _level_db(samples, steps, RMS_WINDOW_S)
    # the gate uses each step's own samples: the wider envelope window would leak speech into a pause's edge
    heard, voiced = _voice_activity(samples, _level_db(samples, steps, HOP_S), steps)
    return SpeechAnalysis(level_db=level, envelope=_envelope(level, heard), voiced=voiced)


def mouth_from_analysis(
    analysis: SpeechAnalysis,
    phones: Sequence[Phone] | None,
    fps: float,
    frames: int,
    *,
    fallback_reason: str | None = None,
) -> MouthTrack:
    """Per-frame opening and width from an analysis and, when given, phone timing (else the envelope alone)."""
    steps = analysis.steps
    voiced = analysis.voiced.astype(bool)
    gain, width = _phone_targets(phones, steps) if phones else _neutral_targets(steps)
    gain, width = np.where(voiced, gain, 0.0), np.where(voiced, width, 0.0)  # silence: relaxed, closed lips
    drive = _smooth(np.where(voiced, analysis.envelope, 0.0), ENVELOPE_TAU_S)
    opening_steps = drive * _smooth(gain, SHAPE_TAU_S)

    voiced_frames = _per_frame(voiced.astype(np.float64), fps, frames) > 1e-6
    opening = np.clip(_per_frame(opening_steps, fps, frames), 0.0, 1.0)
    if phones:
        opening = np.minimum(opening, _frame_caps(phones, fps, frames))
    opening[~voiced_frames] = 0.0
    return MouthTrack(
        opening=opening.astype(np.float32),
        width=np.clip(_per_frame(_smooth(width, SHAPE_TAU_S), fps, frames), -1.0, 1.0).astype(np.float32),
        voiced=voiced_frames,
        envelope=np.clip(_per_frame(_smooth(analysis.envelope, ENVELOPE_TAU_S), fps, frames), 0, 1).astype(np.float32),
        source="phones" if phones else "envelope",
        fps=float(fps),
        phones=tuple(phones or ()),
        fallback_reason=None if phones else (fallback_reason or "no phones were given"),
    )


# --- input -------------------------------------------------------------------------------------------------


def _checked_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if isinstance(sample_rate, bool) or sample_rate != SAMPLE_RATE_HZ:
        raise BadInput(
            f"the speech audio is at {sample_rate} Hz; the classical engine reads {SAMPLE_RATE_HZ} Hz mono: "
            "convert it with pipelines.media.normalize.normalize_audio first"
        )
    array = np.asarray(audio)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise BadInput(
            f"the speech audio has shape {array.shape}; give mono samples (one channel, a 1-D array): "
            "convert it with normalize_audio"
        )
    if array.size == 0:
        raise BadInput("the speech audio is empty (no samples): give a recording of speech")
    if not np.issubdtype(array.dtype, np.floating):
        raise BadInput(f"the speech audio holds {array.dtype} samples; give floats in [-1, 1] (PCM16 values / 32768)")
    finite = np.isfinite(array)
    if not finite.all():
        first = int(np.argmin(finite))
        raise BadInput(
            f"the speech audio has {int((~finite).sum())} NaN or infinite samples (the first at "
            f"{first / SAMPLE_RATE_HZ:.3f} s): decode the recording again"
        )
    peak = float(np.abs(array).max())
    if peak > MAX_ABS_SAMPLE:
        raise BadInput(f"the speech audio peaks at {peak:g}, far outside [-1, 1]: scale PCM values to floats (/ 32768)")
    return array.astype(np.float64)


def _frame_count(samples: int, fps: float) -> int:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise BadInput(f"the video frame rate must be a positive number of frames per second, not {fps!r}")
    return int(round(samples / SAMPLE_RATE_HZ * fps))


# --- analysis ----------------------------------------------------------------------------------------------


def _high_passed(samples: np.ndarray) -> np.ndarray:
    """Hum and DC removed (zero-phase, so no delay), as `pipelines.th.lipsync` measures the level."""
    sos = signal.butter(2, HIGH_PASS_HZ, "highpass", fs=SAMPLE_RATE_HZ, output="sos")
    if len(samples) > 30:
        filtered: np.ndarray = signal.sosfiltfilt(sos, samples)
        return filtered
    return samples


def _level_db(samples: np.ndarray, steps: int, window_s: float) -> np.ndarray:
    """RMS in dBFS over `window_s` centred on each step's centre."""
    energy = np.concatenate([[0.0], np.cumsum(samples * samples)])
    centres = np.arange(steps) * HOP + HOP / 2
    half = window_s * SAMPLE_RATE_HZ / 2
    low = np.clip(np.round(centres - half), 0, len(samples)).astype(np.int64)
    high = np.clip(np.round(centres + half), 0, len(samples)).astype(np.int64)
    power = (energy[high] - energy[low]) / np.maximum(high - low, 1)
    level: np.ndarray = 10.0 * np.log10(np.maximum(power, 1e-12))  # -120 dBFS for digital silence
    return level


def _voice_activity(samples: np.ndarray, level: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(heard, voiced) per 10 ms step: heard = webrtcvad AND the energy gate, clicks dropped; voiced = heard with
    short gaps bridged."""
    pcm = np.zeros(steps * HOP, dtype="<i2")
    pcm[: len(samples)] = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    vad = webrtcvad.Vad(VAD_MODE)
    raw = pcm.tobytes()
    heard = np.fromiter(
        (vad.is_speech(raw[2 * HOP * k : 2 * HOP * (k + 1)], SAMPLE_RATE_HZ) for k in range(steps)),
        dtype=bool,
        count=steps,
    )
    threshold = _gate_db(level, heard)
    active = heard & (level > threshold)
    active = _drop_runs(active, value=True, shorter_than=round(MIN_RUN_S / HOP_S))
    return active, _drop_runs(active, value=False, shorter_than=round(MAX_GAP_S / HOP_S) + 1, inner_only=True)


def _gate_db(level: np.ndarray, heard: np.ndarray) -> float:
    """The level speech must exceed: above the absolute floor, near the loud level, clear of the noise floor."""
    threshold = ABSOLUTE_FLOOR_DB
    audible = level[level > ABSOLUTE_FLOOR_DB]
    if audible.size:
        threshold = max(threshold, float(np.percentile(audible, 95)) - GATE_BELOW_LOUD_DB)
    quiet = level[~heard]
    if quiet.size >= round(0.2 / HOP_S):  # at least 200 ms of non-speech to measure the noise on
        threshold = max(threshold, float(np.median(quiet)) + GATE_ABOVE_NOISE_DB)
    return threshold


def _drop_runs(mask: np.ndarray, *, value: bool, shorter_than: int, inner_only: bool = False) -> np.ndarray:
    """`mask` with runs of `value` shorter than `shorter_than` steps flipped; `inner_only` keeps edge runs."""
    result: np.ndarray = mask.copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask == value, [False]]).astype(np.int8)))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        at_edge = start == 0 or stop == len(mask)
        if stop - start < shorter_than and not (inner_only and at_edge):
            result[start:stop] = not value
    return result


def _envelope(level: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """Level mapped to 0..1 between robust percentiles of the steps heard as speech (not the bridged gaps, whose
    silence would stretch the scale); 0 everywhere when there is no speech."""
    if not heard.any():
        return np.zeros(len(level))
    speech = level[heard]
    high = float(np.percentile(speech, ENVELOPE_HIGH_PERCENTILE))
    low = min(float(np.percentile(speech, ENVELOPE_LOW_PERCENTILE)), high - ENVELOPE_MIN_SPAN_DB)
    envelope: np.ndarray = np.clip((level - low) / (high - low), 0.0, 1.0)
    return envelope


# --- shapes ------------------------------------------------------------------------------------------------


def _neutral_targets(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(gain, width) per step where nothing is known of the phone: the "unknown" viseme."""
    unknown = VISEMES["unknown"]
    return np.full(steps, unknown.gain), np.full(steps, unknown.width)


def _phone_targets(phones: Sequence[Phone], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(gain, width) per 10 ms step from the phone covering the step's centre (neutral where none does)."""
    gain, width = _neutral_targets(steps)
    centres = (np.arange(steps) + 0.5) * HOP_S
    for phone in phones:
        covered = (centres >= phone.start_s) & (centres < phone.end_s)
        viseme = viseme_of(phone.label)
        gain[covered], width[covered] = viseme.gain, viseme.width
    return gain, width


def _frame_caps(phones: Sequence[Phone], fps: float, frames: int) -> np.ndarray:
    """Per-frame cap: each closing phone (cap < 1) caps the frames it covers for at least half their span, and
    always at least one frame (the one holding its middle), so even a 30 ms M shows as a closed mouth."""
    caps = np.ones(frames)
    for phone in phones:
        limit = viseme_of(phone.label).cap
        if limit >= 1.0 or phone.end_s <= phone.start_s:
            continue
        first, last = math.floor(phone.start_s * fps), math.ceil(phone.end_s * fps)
        chosen = [
            i
            for i in range(max(first, 0), min(last, frames))
            if min(phone.end_s, (i + 1) / fps) - max(phone.start_s, i / fps) >= 0.5 / fps
        ]
        middle = math.floor(0.5 * (phone.start_s + phone.end_s) * fps)
        if not chosen and 0 <= middle < frames:
            chosen = [middle]
        for i in chosen:
            caps[i] = min(caps[i], limit)
    return caps


def _smooth(values: np.ndarray, tau_s: float) -> np.ndarray:
    """Zero-phase smoothing: a one-pole low-pass forwards then backwards (kernel exp(-|t|/tau), no delay).

    The kernel is positive and sums to 1, so the result stays within the input's range (opening in [0, 1])."""
    if len(values) < 2:
        return values.astype(np.float64)
    pole = math.exp(-HOP_S / tau_s)
    b, a = np.array([1.0 - pole]), np.array([1.0, -pole])
    zi = signal.lfilter_zi(b, a)
    forward, _ = signal.lfilter(b, a, values, zi=zi * values[0])
    backward, _ = signal.lfilter(b, a, forward[::-1], zi=zi * forward[-1])
    smoothed: np.ndarray = backward[::-1]
    return smoothed


def _per_frame(step_values: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """Mean of a 10 ms-step signal over each video frame's span [i/fps, (i+1)/fps) (the last step held beyond)."""
    if frames == 0:
        return np.zeros(0)
    if len(step_values) == 0:
        return np.zeros(frames)
    steps = len(step_values)
    end = max(frames / fps, steps * HOP_S)
    padded = np.append(step_values, step_values[-1])
    times = np.append(np.arange(steps + 1) * HOP_S, end + HOP_S)
    area = np.concatenate([[0.0], np.cumsum(padded * np.diff(times))])
    bounds = np.arange(frames + 1) / fps
    integral = np.interp(bounds, times, area)
    means: np.ndarray = np.diff(integral) * fps
    return means
