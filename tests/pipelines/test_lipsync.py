"""The lip-sync score of an output video, measured from the video alone.

Fast tests build a talking face the landmark model really sees: a real portrait (grace_hopper, which ships in a
wheel) whose lower lip and chin are warped down, the gap painted as the inside of a mouth, by a known amount per
frame, muxed with a voice-like tone whose level follows the same curve. Media tests run on the real recording.
"""

from __future__ import annotations

import json
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.media.ffmpeg_tool import find_ffmpeg
from pipelines.media.frames import FrameWriter
from pipelines.media.mux import mux_audio
from pipelines.media.synthetic import face_photo
from pipelines.th.face.backends import open_backend
from pipelines.th.lipsync import (
    LipSyncScore,
    LipSyncThresholds,
    lipsync_score,
    score_from_series,
    speech_envelope,
)

FPS = 25
SIZE = 256
RATE = 16000
MAX_GAP_PX = 16.0  # lower-lip drop at full opening, on the 256 px frame
BLANK_FRAMES = 4  # frames with no face at the end of the clip


# --- a synthetic talker ------------------------------------------------------------------------------------------


def syllables(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Opening 0..1 per frame: bumps of 4-8 frames with random heights, like syllables at 3-6 a second."""
    curve = np.zeros(frames)
    start = 0
    while start < frames:
        length = int(rng.integers(4, 9))
        height = rng.uniform(0.35, 1.0)
        bump = height * np.sin(np.pi * (np.arange(length) + 0.5) / length)
        curve[start : start + length] = bump[: frames - start]
        start += length
    return curve


def talk(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(opening 0..1, speaking) per frame for 6 s: speech, a 0.8 s pause, speech, a 0.8 s pause, speech."""
    rng = np.random.default_rng(seed)
    frames = 6 * FPS
    opening = syllables(rng, frames)
    speaking = np.ones(frames, dtype=bool)
    speaking[50:70] = speaking[110:130] = False
    opening[~speaking] = 0.0
    return opening, speaking


def write_speech(path: Path, opening: np.ndarray, speaking: np.ndarray, shift_frames: int = 0) -> Path:
    """A 16 kHz WAV: a 140 Hz voice-like tone whose level (dB) rises linearly with the opening; digital silence
    where nobody speaks. shift_frames > 0 plays it that many frames late (the mouth then leads the sound)."""
    level_db = np.where(speaking, -26.0 + 24.0 * opening, -np.inf)
    amplitude = np.where(speaking, 10.0 ** (level_db / 20.0), 0.0)
    if shift_frames > 0:
        amplitude = np.concatenate([np.zeros(shift_frames), amplitude[:-shift_frames]])
    elif shift_frames < 0:
        amplitude = np.concatenate([amplitude[-shift_frames:], np.zeros(-shift_frames)])
    t = np.arange(len(opening) * RATE // FPS) / RATE
    frame_of_sample = np.minimum((t * FPS).astype(int), len(opening) - 1)
    tone = sum(np.sin(2 * np.pi * 140 * h * t) / h for h in range(1, 9))
    tone = tone / np.sqrt(np.mean(tone**2))
    samples = np.clip(amplitude[frame_of_sample] * tone, -1, 1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@dataclass(frozen=True)
class Portrait:
    picture: np.ndarray
    lip_line: np.ndarray  # iBUG 60-64: where the lips meet
    corners: tuple[float, float]  # x of the mouth corners (48, 54)
    chin_y: float


@pytest.fixture(scope="module")
def portrait() -> Portrait:
    photo = face_photo("grace_hopper")
    with open_backend("mediapipe", max_faces=1, video=False) as backend:
        points = backend.detect([photo])[0][0].points
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    side = int((y1 - y0) * 1.8)
    left, top = int((x0 + x1 - side) / 2), int((y0 + y1 - side) / 2)
    crop = photo[max(top, 0) : top + side, left : left + side]
    scale = SIZE / crop.shape[0]
    picture = cv2.resize(np.ascontiguousarray(crop), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    points = (points - np.array([left, max(top, 0)])) * scale
    return Portrait(picture, points[60:65], (float(points[48, 0]), float(points[54, 0])), float(points[8, 1]))


def open_mouth(face: Portrait, gap_px: float) -> np.ndarray:
    """The portrait with its lower lip and chin pulled down by `gap_px` at the mouth's centre, the gap dark."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    lip_y = np.interp(xs[0], face.lip_line[:, 0], face.lip_line[:, 1]).astype(np.float32)[None, :]
    centre, half = (face.corners[0] + face.corners[1]) / 2, (face.corners[1] - face.corners[0]) / 2
    mouth = np.clip(1 - ((xs - centre) / half) ** 2, 0, 1)
    jaw = np.clip(1 - ((xs - centre) / (1.8 * half)) ** 2, 0, 1)
    fade = np.clip(1 - (ys - face.chin_y) / (0.6 * (face.chin_y - lip_y)), 0, 1)
    drop = np.where(ys > lip_y, np.maximum(mouth, jaw) * fade, 0) * np.float32(gap_px)
    frame = cv2.remap(face.picture, xs, (ys - drop).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    frame[(ys >= lip_y) & (ys < lip_y + gap_px * mouth)] = (60, 25, 30)
    return frame


def write_talker(path: Path, face: Portrait, opening: np.ndarray) -> Path:
    """A silent H.264 clip of the portrait opening its mouth as `opening` says; its last frames show no face."""
    with FrameWriter(path, fps=FPS, width=SIZE, height=SIZE) as writer:
        for index, value in enumerate(opening):
            if index >= len(opening) - BLANK_FRAMES:
                writer.write(np.full((SIZE, SIZE, 3), 128, dtype=np.uint8))
            else:
                writer.write(open_mouth(face, MAX_GAP_PX * float(value)))
    return path


@dataclass(frozen=True)
class Clips:
    synced: Path  # mouth and speech follow one curve, speech muxed into the MP4
    babbling: Path  # the same speech muxed, the mouth moving at random
    speech: Path
    early: Path  # the speech 3 frames early (the mouth lags it)
    late: Path  # the speech 3 frames late (the mouth leads it)


@pytest.fixture(scope="module")
def clips(portrait: Portrait, tmp_path_factory: pytest.TempPathFactory) -> Clips:
    folder = tmp_path_factory.mktemp("lipsync")
    opening, speaking = talk()
    speech = write_speech(folder / "speech.wav", opening, speaking)
    synced, babbling = folder / "synced.mp4", folder / "babbling.mp4"
    mux_audio(write_talker(folder / "synced_silent.mp4", portrait, opening), speech, synced)
    random_mouth = np.random.default_rng(3).uniform(0.0, 1.0, len(opening))
    mux_audio(write_talker(folder / "babbling_silent.mp4", portrait, random_mouth), speech, babbling)
    return Clips(
        synced=synced,
        babbling=babbling,
        speech=speech,
        early=write_speech(folder / "early.wav", opening, speaking, shift_frames=-3),
        late=write_speech(folder / "late.wav", opening, speaking, shift_frames=3),
    )


@pytest.fixture(scope="module")
def synced_score(clips: Clips) -> LipSyncScore:
    return lipsync_score(clips.synced)


# --- whole videos --------------------------------------------------------------------------------------------------


def test_a_mouth_that_follows_the_speech_scores_high_at_offset_zero(synced_score: LipSyncScore) -> None:
    score = synced_score
    assert score.frames == 150 and score.face_frames == 150 - BLANK_FRAMES
    assert score.correlation is not None and score.correlation >= 0.8
    assert score.offset_frames == 0
    assert score.correlation_at_zero == score.correlation
    # both pauses (20 frames each, less one frame at each edge) are silent, and the mouth is shut in them
    assert 30 <= score.silent_frames <= 40
    assert score.silent_closed_share is not None and score.silent_closed_share >= 0.95
    assert LipSyncThresholds(min_face_share=0.9).flags(score) == []


def test_the_speech_given_as_a_file_scores_like_the_muxed_track(clips: Clips, synced_score: LipSyncScore) -> None:
    from_file = lipsync_score(clips.synced, clips.speech)
    assert from_file.offset_frames == 0
    assert from_file.correlation == pytest.approx(synced_score.correlation, abs=0.02)


@pytest.mark.parametrize(("speech", "offset"), [("early", 3), ("late", -3)])
def test_speech_shifted_by_three_frames_is_reported_as_that_offset(clips: Clips, speech: str, offset: int) -> None:
    score = lipsync_score(clips.synced, getattr(clips, speech))
    assert score.offset_frames == offset
    assert score.correlation is not None and score.correlation >= 0.8
    assert score.correlation_at_zero is not None and score.correlation_at_zero < score.correlation - 0.3
    way = "lags" if offset > 0 else "leads"
    assert LipSyncThresholds().flags(score) == [f"the mouth {way} the audio by 3 frames (120 ms); at most 1 allowed"]


def test_a_mouth_moving_at_random_scores_low_and_is_flagged(clips: Clips) -> None:
    score = lipsync_score(clips.babbling)
    assert score.correlation is not None and score.correlation < 0.35
    assert score.silent_closed_share is not None and score.silent_closed_share < 0.5
    flags = LipSyncThresholds().flags(score)
    assert flags[0] == f"lip-sync correlation {score.correlation:.2f} is below 0.5"
    assert flags[1].startswith("the mouth is closed in only ")


def test_the_score_is_json_without_nan(synced_score: LipSyncScore) -> None:
    data = json.loads(json.dumps(synced_score.to_dict(), allow_nan=False))
    assert data["offset_frames"] == 0 and data["offset_ms"] == 0.0
    assert set(data["correlations"]) == {str(k) for k in range(-5, 6)}
    assert data["correlations"]["0"] == data["correlation"]


def test_a_video_without_an_audio_track_needs_the_speech(clips: Clips, tmp_path: Path) -> None:
    silent = tmp_path / "silent.mp4"
    with FrameWriter(silent, fps=FPS, width=64, height=64) as writer:
        writer.write(np.zeros((3, 64, 64, 3), dtype=np.uint8))
    with pytest.raises(BadInput, match="no audio track"):
        lipsync_score(silent)


# --- the signal-processing core ------------------------------------------------------------------------------------


def series(seed: int = 1, frames: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(opening, envelope dB) that match: the level is linear in the opening, with a pause in the middle whose
    level, once raised to the silence floor (30 dB under the 95th percentile), continues that line."""
    rng = np.random.default_rng(seed)
    opening = 0.12 * syllables(rng, frames)
    opening[90:110] = 0.0
    level = -40.0 + 30.0 * opening / np.percentile(opening, 95)
    level[90:110] = -90.0
    return opening, level


def test_matching_series_correlate_fully_at_offset_zero() -> None:
    opening, level = series()
    score = score_from_series(opening, level, fps=25)
    assert score.correlation == pytest.approx(1.0, abs=1e-6) and score.offset_frames == 0
    assert score.silent_frames == 18 and score.silent_closed_share == 1.0


@pytest.mark.parametrize("lag", [-4, -1, 2, 5])
def test_a_mouth_lagging_the_sound_gives_a_positive_offset(lag: int) -> None:
    opening, level = series(frames=240)
    mouth = np.roll(opening, lag)  # the mouth does at frame i what the sound did at frame i - lag
    score = score_from_series(mouth, level, max_offset_frames=5)
    assert score.offset_frames == lag
    assert score.correlation == pytest.approx(1.0, abs=0.02)


def test_frames_without_a_face_take_no_part() -> None:
    opening, level = series()
    holes = opening.copy()
    holes[[3, 40, 41, 42, 150]] = np.nan
    score = score_from_series(holes, level)
    assert score.face_frames == 195 and score.frames == 200
    assert score.offset_frames == 0 and score.correlation == pytest.approx(1.0, abs=1e-6)


def test_a_frozen_mouth_or_too_few_frames_cannot_be_measured() -> None:
    _, level = series()
    frozen = score_from_series(np.full(200, 0.05), level)
    assert frozen.correlation is None and frozen.offset_frames is None
    assert LipSyncThresholds().flags(frozen)[0].startswith("the lip-sync correlation cannot be measured")
    short = score_from_series(np.linspace(0, 0.1, 15), np.linspace(-30, -10, 15), max_offset_frames=5)
    assert short.correlation is None
    nobody = score_from_series(np.full(50, np.nan), np.linspace(-30, -10, 50))
    assert LipSyncThresholds().flags(nobody) == [
        "no face was found in any of the 50 frames, so the lip-sync cannot be measured"
    ]


def test_only_pauses_count_as_silence_and_closed_is_relative_to_the_mouth() -> None:
    level = np.full(60, -20.0)
    level[10] = -90.0  # one quiet frame: a consonant, not a pause
    level[20:23] = -90.0  # three: only the middle one is inside the pause
    level[40:50] = -90.0  # ten: eight inside
    opening = np.full(60, 0.25)
    opening[[21, 41, 42, 43, 44]] = 0.04  # under 20 % of the 95th percentile (0.25): closed
    score = score_from_series(opening, level)
    assert score.silent_frames == 1 + 8
    assert score.closed_threshold == pytest.approx(0.05)
    assert score.silent_closed_share == pytest.approx(5 / 9)
    quiet_mouth = score_from_series(np.where(opening > 0.1, 0.1, 0.02), level)
    assert quiet_mouth.closed_threshold == pytest.approx(0.03)  # the absolute floor, not 20 % of 0.1


def test_flags_name_each_failure() -> None:
    score = LipSyncScore(
        correlation=0.31, offset_frames=4, correlation_at_zero=0.1, silent_closed_share=0.4, frames=100,
        face_frames=80, silent_frames=20, closed_threshold=0.03, max_offset_frames=5, correlations=(None,) * 11,
        fps=25.0,
    )  # fmt: skip
    assert LipSyncThresholds(min_silent_closed_share=0.7).flags(score) == [
        "a face was found in only 80% of the frames (80 of 100); at least 90% expected",
        "lip-sync correlation 0.31 is below 0.5",
        "the mouth is closed in only 40% of the 20 silent frames; at least 70% expected",
    ]
    assert LipSyncThresholds(min_correlation=0.3, max_abs_offset_frames=4, min_silent_closed_share=0.4,
                             min_face_share=0.8).flags(score) == []  # fmt: skip


def test_thresholds_come_from_run_parameters() -> None:
    thresholds = LipSyncThresholds.from_params({"min_correlation": 0.6, "max_abs_offset_frames": 2})
    assert thresholds == LipSyncThresholds(min_correlation=0.6, max_abs_offset_frames=2)
    assert json.loads(json.dumps(thresholds.to_dict()))["min_silent_closed_share"] == 0.7
    assert LipSyncThresholds.from_params(None) == LipSyncThresholds()
    with pytest.raises(BadInput, match="unknown lipsync parameter 'min_corr'; use any of max_abs_offset_frames"):
        LipSyncThresholds.from_params({"min_corr": 0.6})
    with pytest.raises(BadInput, match="must be a number"):
        LipSyncThresholds.from_params({"min_correlation": "high"})
    with pytest.raises(BadInput, match="whole number"):
        LipSyncThresholds.from_params({"max_abs_offset_frames": 1.5})


def test_the_envelope_puts_sound_in_the_frame_that_shows_it() -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)  # 1 s: 25 frames of 640 samples
    samples = np.zeros(RATE, dtype=np.float32)
    samples[8 * 640 : 12 * 640] = 0.5 * tone[8 * 640 : 12 * 640]  # frames 8-11
    samples[20 * 640 : 21 * 640] = 0.05 * tone[20 * 640 : 21 * 640]  # frame 20, 20 dB quieter
    level = speech_envelope(samples, fps=25, frames=30)
    loud = level[8:12]
    assert np.ptp(loud) < 0.5 and loud.min() > max(level[7], level[12]) + 20
    assert level[20] == pytest.approx(loud.mean() - 20.0, abs=0.5)
    assert level[0] == pytest.approx(loud.mean() - 30.0, abs=0.5)  # digital silence sits at the floor, not -inf
    assert np.isnan(level[25:]).all() and np.isfinite(level[:25]).all()  # beyond the audio: unknown, not silent
    later = speech_envelope(samples, fps=25, frames=30, start_s=0.08)  # the audio starts 2 frames late
    assert later[10:14] == pytest.approx(loud, abs=0.1) and later[9] < loud.min() - 20


# --- the real recording --------------------------------------------------------------------------------------------


def shifted_copy(source: Path, output: Path, seconds: float) -> Path:
    """`source` with its audio played `seconds` later (> 0) or earlier (< 0); the video stream copied."""
    audio_input = ["-itsoffset", f"{seconds}"] if seconds > 0 else ["-ss", f"{-seconds}"]
    command = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), *audio_input,
               "-i", str(source), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(output)]  # fmt: skip
    subprocess.run(command, check=True)
    return output


@pytest.mark.media
def test_a_real_talking_person_correlates_and_a_shifted_track_is_seen(shared_media: Path, tmp_path: Path) -> None:
    clip = shared_media / "talking_512.mp4"
    own = lipsync_score(clip, max_offset_frames=10)
    # measured: 0.29 at -2 frames (the lips move before the sound), 0.20 at 0
    assert own.correlation is not None and own.correlation > 0.2
    assert own.offset_frames is not None and -3 <= own.offset_frames <= 0
    assert own.face_frames == own.frames == 200
    for seconds, shift in ((0.2, -5), (-0.2, 5)):
        moved = lipsync_score(shifted_copy(clip, tmp_path / f"shift{shift}.mp4", seconds), max_offset_frames=10)
        assert moved.offset_frames == own.offset_frames + shift
        assert moved.correlation == pytest.approx(own.correlation, abs=0.05)
