"""Speech -> mouth track of the classical engine: frame count, closed mouth in pauses, syllables at lag 0, the
phone -> viseme -> shape rules on hand-made phones, the envelope fallback without pocketsphinx, and bad input.

The test speech is made here: glottal pulses (120 Hz) through three formant resonators, its loudness modulated into
syllables at a known rate, with pauses of known length between phrases.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from pipelines.base import BadInput
from pipelines.media.normalize import normalize_audio
from pipelines.media.wav import read_wav_16k
from pipelines.th.classical import speech
from pipelines.th.classical.phones import PhonesUnavailable
from pipelines.th.classical.speech import SpeechAnalysis, mouth_from_analysis, mouth_track
from pipelines.th.classical.visemes import Phone, viseme_of

SR = 16000
FPS = 25


def speech_like(phrases: list[tuple[str, float]], *, syllables_per_s: float = 4.0, seed: int = 0) -> np.ndarray:
    """`phrases`: ("speech" | "pause", seconds) in order. Speech is voiced pulses shaped by formants, its loudness
    rising and falling `syllables_per_s` times a second (from 0.15 to 1 of full scale)."""
    rng = np.random.default_rng(seed)
    total = int(round(sum(seconds for _, seconds in phrases) * SR))
    pulses = np.zeros(total)
    position = 0.0
    while position < total:
        pulses[int(position)] = 1.0
        position += SR / 120.0 * (1.0 + 0.01 * rng.standard_normal())
    voice = np.zeros(total)
    for centre, bandwidth in ((700.0, 80.0), (1200.0, 90.0), (2600.0, 120.0)):
        radius, angle = math.exp(-math.pi * bandwidth / SR), 2 * math.pi * centre / SR
        voice += signal.lfilter([1 - radius], [1, -2 * radius * math.cos(angle), radius * radius], pulses)
    loudness = np.zeros(total)
    start = 0.0
    for kind, seconds in phrases:
        first, stop = int(round(start * SR)), int(round((start + seconds) * SR))
        if kind == "speech":
            t = np.arange(stop - first) / SR
            loudness[first:stop] = 0.15 + 0.85 * np.sin(math.pi * syllables_per_s * t) ** 2
        start += seconds
    out = voice * loudness
    scaled: np.ndarray = (0.5 * out / np.abs(out).max()).astype(np.float32)
    return scaled


def frames_within(start_s: float, stop_s: float) -> np.ndarray:
    """Indices of the video frames whose whole span lies inside [start_s, stop_s)."""
    return np.arange(math.ceil(start_s * FPS - 1e-9), math.floor(stop_s * FPS + 1e-9))


def level_db_per_frame(audio: np.ndarray, frames: int) -> np.ndarray:
    """The reference loudness: RMS in dB over each frame's span, floored 30 dB under the loudest frames."""
    padded = np.zeros(frames * SR // FPS)
    padded[: min(len(audio), len(padded))] = audio[: len(padded)]
    power = np.mean(padded.reshape(frames, -1) ** 2, axis=1)
    level: np.ndarray = 10 * np.log10(np.maximum(power, 1e-12))
    floored: np.ndarray = np.maximum(level, np.percentile(level, 95) - 30)
    return floored


def best_lag(opening: np.ndarray, reference: np.ndarray, max_lag: int = 4) -> int:
    """The lag k maximising corr(opening[i], reference[i - k]); k > 0: the mouth lags the sound."""
    window = np.arange(max_lag, len(opening) - max_lag)
    correlations = [np.corrcoef(opening[window], reference[window - k])[0, 1] for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(correlations)) - max_lag


PHRASES = [("pause", 0.5), ("speech", 1.0), ("pause", 0.3), ("speech", 1.0), ("pause", 0.25), ("speech", 0.5)]
PHRASES += [("pause", 0.5)]


@pytest.mark.parametrize("seconds", [0.03, 0.5, 1.013, 2.37, 3.0])
@pytest.mark.parametrize("fps", [25, 30])
def test_one_value_per_video_frame(seconds: float, fps: int) -> None:
    audio = speech_like([("speech", seconds)])
    track = mouth_track(audio, SR, fps, use_phones=False)
    expected = round(len(audio) / SR * fps)
    for values in (track.opening, track.width, track.voiced, track.envelope):
        assert values.shape == (expected,)
    assert track.voiced.dtype == bool
    assert np.all((track.opening >= 0) & (track.opening <= 1))
    assert np.all((track.width >= -1) & (track.width <= 1))


@pytest.mark.parametrize("use_phones", [False, True])
def test_mouth_is_closed_in_pauses_and_open_in_speech(use_phones: bool) -> None:
    audio = speech_like(PHRASES)
    track = mouth_track(audio, SR, FPS, use_phones=use_phones)
    start = 0.0
    for kind, seconds in PHRASES:
        inside = frames_within(start, start + seconds)
        if kind == "pause":
            assert seconds <= 0.2 or np.all(track.opening[inside] == 0), f"pause at {start:.2f} s not closed"
            assert seconds <= 0.2 or not track.voiced[inside].any()
        else:
            assert np.all(track.opening[inside] > 0), f"mouth closed inside the speech at {start:.2f} s"
            assert track.voiced[inside].all()
            assert track.opening[inside].max() > 0.4
        start += seconds


@pytest.mark.parametrize("syllables_per_s", [4.0, 5.0])
@pytest.mark.parametrize("use_phones", [False, True])
def test_opening_follows_the_syllables_without_delay(syllables_per_s: float, use_phones: bool) -> None:
    phrases = [("pause", 0.4), ("speech", 2.0), ("pause", 0.4), ("speech", 2.0), ("pause", 0.4)]
    audio = speech_like(phrases, syllables_per_s=syllables_per_s)
    track = mouth_track(audio, SR, FPS, use_phones=use_phones)

    # lip-sync is judged within one frame; this clean speech, smoothed without delay, must peak exactly at 0
    assert best_lag(track.opening, level_db_per_frame(audio, track.frames)) == 0
    # every syllable shows as its own opening and closing, not smoothed away
    in_speech = np.concatenate([frames_within(0.4, 2.4), frames_within(2.8, 4.8)])
    peaks, _ = signal.find_peaks(np.where(np.isin(np.arange(track.frames), in_speech), track.opening, 0),
                                 prominence=0.25)  # fmt: skip
    assert len(peaks) == round(4 * syllables_per_s)


def test_a_short_gap_inside_speech_is_not_a_pause() -> None:
    """A 100 ms gap (a stop consonant, a breath between words) keeps the speech going; the mouth only dips."""
    audio = speech_like([("pause", 0.3), ("speech", 0.5), ("pause", 0.1), ("speech", 0.5), ("pause", 0.3)])
    track = mouth_track(audio, SR, FPS, use_phones=False)
    assert track.voiced[frames_within(0.3, 1.4)].all()
    assert track.opening[frames_within(0.8, 0.9)].max() < 0.1
    # the gap's silence does not flatten the syllables around it (the loudness scale ignores bridged gaps)
    peaks, _ = signal.find_peaks(track.opening, prominence=0.25)
    assert len(peaks) == 4


def test_a_delayed_mouth_would_be_caught() -> None:
    """The lag measure of the test above sees a mouth two frames late (so the test can fail)."""
    audio = speech_like([("pause", 0.4), ("speech", 2.0), ("pause", 0.4)])
    track = mouth_track(audio, SR, FPS, use_phones=False)
    late = np.concatenate([np.zeros(2), track.opening[:-2]])
    assert best_lag(late, level_db_per_frame(audio, track.frames)) == 2


@pytest.mark.parametrize("use_phones", [False, True])
def test_silence_gives_a_closed_still_mouth(use_phones: bool) -> None:
    quiet_room = np.random.default_rng(1).standard_normal(2 * SR) * 10 ** (-50 / 20)
    for audio in (np.zeros(2 * SR, dtype=np.float32), quiet_room.astype(np.float32)):
        track = mouth_track(audio, SR, FPS, use_phones=use_phones)
        assert track.frames == 2 * FPS
        assert not track.opening.any() and not track.voiced.any() and not track.width.any()


# --- phones -> visemes -> shapes (no pocketsphinx) ----------------------------------------------------------


def test_visemes_of_arpabet_labels() -> None:
    assert viseme_of("M").cap == viseme_of("b").cap == viseme_of("P").cap == 0.0
    assert viseme_of("F").cap <= 0.15 and viseme_of("V").cap <= 0.15
    assert viseme_of("AA1").name == viseme_of("AA").name == "open"  # stress digits do not matter
    assert viseme_of("IY").width > 0.5 > -0.5 > viseme_of("UW").width
    assert viseme_of("+NSN+").name == "unknown" and viseme_of("XYZ").cap == 1.0


def loud_speech(seconds: float) -> SpeechAnalysis:
    steps = int(seconds * 100)
    return SpeechAnalysis(level_db=np.full(steps, -20.0), envelope=np.ones(steps), voiced=np.ones(steps, bool))


def test_phones_shape_the_mouth() -> None:
    phones = [
        Phone("AA", 0.0, 0.4), Phone("M", 0.4, 0.52), Phone("AA", 0.52, 0.8),
        Phone("UW", 0.8, 1.2), Phone("F", 1.2, 1.32), Phone("IY", 1.32, 1.72), Phone("AE", 1.72, 2.0),
    ]  # fmt: skip
    track = mouth_from_analysis(loud_speech(2.0), phones, FPS, 50)
    assert track.source == "phones"

    def at(start: float, stop: float) -> np.ndarray:
        return frames_within(start, stop)

    assert np.all(track.opening[at(0.4, 0.52)] == 0), "M must close the lips"
    assert np.all(track.opening[at(1.2, 1.32)] <= 0.15), "F must nearly close them"
    aa, uw, iy = track.opening[at(0.08, 0.32)], track.opening[at(0.88, 1.12)], track.opening[at(1.4, 1.64)]
    assert aa.min() > 0.8 and aa.min() > uw.max() + 0.3 and aa.min() > iy.max() + 0.3
    assert track.width[at(0.88, 1.12)].max() < -0.7, "UW rounds the lips"
    assert track.width[at(1.4, 1.64)].min() > 0.7, "IY spreads them"
    assert abs(track.width[at(0.08, 0.32)]).max() < 0.3
    # coarticulation: the shape changes gradually into the next phone (no jump from rounded to spread)
    assert np.abs(np.diff(track.width[at(0.8, 1.72)])).max() < 0.8


def test_a_short_closure_still_shows_in_a_frame() -> None:
    track = mouth_from_analysis(loud_speech(1.0), [Phone("AA", 0.0, 0.5), Phone("B", 0.53, 0.56)], FPS, 25)
    closed = np.flatnonzero(track.opening == 0)
    assert len(closed) >= 1 and all(12 <= i <= 14 for i in closed)


def test_without_phones_the_envelope_drives_the_mouth() -> None:
    analysis = loud_speech(1.0)
    analysis.envelope[:50] = 0.3
    track = mouth_from_analysis(analysis, None, FPS, 25, fallback_reason="because")
    assert track.source == "envelope" and track.fallback_reason == "because"
    assert not track.width.any()
    assert np.allclose(track.opening[2:10], 0.3 * viseme_of("unknown").gain, atol=0.01)
    assert np.allclose(track.opening[15:23], viseme_of("unknown").gain, atol=0.01)


def test_falls_back_to_the_envelope_when_pocketsphinx_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # `import pocketsphinx` now raises ImportError
    track = mouth_track(speech_like(PHRASES), SR, FPS)
    assert track.source == "envelope"
    assert track.fallback_reason is not None and "pocketsphinx is not installed" in track.fallback_reason
    assert track.opening.max() > 0.4


def test_falls_back_to_the_envelope_when_decoding_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(audio: np.ndarray, sample_rate: int) -> list[Phone]:
        raise PhonesUnavailable("pocketsphinx failed to decode the speech (boom)")

    monkeypatch.setattr(speech, "decode_phones", broken)
    track = mouth_track(speech_like(PHRASES), SR, FPS)
    assert track.source == "envelope" and "boom" in str(track.fallback_reason)


# --- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audio", "rate", "fps", "problem"),
    [
        (np.zeros(0, np.float32), SR, FPS, "empty"),
        (np.array([0.1, np.nan, 0.2] * 1000, np.float32), SR, FPS, "NaN"),
        (np.array([0.1, np.inf] * 1000, np.float32), SR, FPS, "infinite"),
        (np.zeros(SR, np.float32), 44100, FPS, "44100 Hz"),
        (np.zeros((2, SR), np.float32), SR, FPS, "mono"),
        (np.zeros(SR, np.int16), SR, FPS, "floats"),
        (np.full(SR, 12000.0, np.float32), SR, FPS, "outside [-1, 1]"),
        (np.zeros(SR, np.float32), SR, 0, "frame rate"),
        (np.zeros(SR, np.float32), SR, float("nan"), "frame rate"),
    ],
)
def test_bad_input_is_named(audio: np.ndarray, rate: int, fps: float, problem: str) -> None:
    with pytest.raises(BadInput, match=problem.replace("[", r"\[").replace("]", r"\]")):
        mouth_track(audio, rate, fps)


# --- real speech -----------------------------------------------------------------------------------------------


@pytest.mark.media
def test_real_speech_has_closed_pauses_and_open_speech(shared_media: Path, tmp_path: Path) -> None:
    wav = tmp_path / "sun.wav"
    normalize_audio(shared_media / "sun.wav", wav, 16000)
    audio = read_wav_16k(wav)
    track = mouth_track(audio, SR, FPS)

    assert track.source == "phones", track.fallback_reason
    assert track.frames == round(len(audio) / SR * FPS)
    # pauses: runs of >= 5 silent frames (200 ms) between the phrases, the mouth shut all through them
    silent = ~track.voiced
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
    pauses = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 5 and 0 < a and b < track.frames]
    assert len(pauses) >= 3
    assert all(np.all(track.opening[a:b] == 0) for a, b in pauses)
    # speech: the mouth opens clearly in much of it, and closes for the lip consonants the decoder found
    assert 0.5 < track.voiced.mean() < 0.95
    assert np.mean(track.opening[track.voiced] > 0.2) > 0.3
    assert any(viseme_of(phone.label).cap == 0 for phone in track.phones)
    assert abs(best_lag(track.opening, level_db_per_frame(audio, track.frames))) <= 1
    assert track.width.min() < -0.3 and track.width.max() > 0.3
