"""facesync's building blocks on made-up arrays: the window validator, windows and split units, pose
normalisation, statistics and the deterministic .npz writer. No media, no landmark backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.facesync.npz import write_npz
from pipelines.facesync.pose import RIGID_POINTS, inter_ocular_px, normalise_pose
from pipelines.facesync.stats import STD_FLOOR, LandmarkStats
from pipelines.facesync.track_file import Track, load_track, save_track
from pipelines.facesync.validation import WindowThresholds, count_reasons, validate_windows
from pipelines.facesync.windows import base_windows, stride_frames, unit_id, window_starts

W = 25
SPF = 640  # 16 kHz at 25 fps


def template() -> np.ndarray:
    """68 points on a face-like layout with the outer eye corners 100 px apart."""
    rng = np.random.default_rng(7)
    points = rng.uniform(-60, 60, size=(68, 2))
    points[36], points[45] = (-50.0, 0.0), (50.0, 0.0)
    return points + 200.0


def make_track(frames: int = 100, *, audio: np.ndarray | None = None) -> Track:
    """A clean talking track: the template drifting slowly, a -20 dBFS tone, every frame usable."""
    drift = np.linspace(0, 10, frames)[:, None, None]
    points_px = (template()[None] + drift).astype(np.float32)
    usable = np.ones(frames, dtype=bool)
    pose = normalise_pose(points_px, usable)
    if audio is None:
        t = np.arange(frames * SPF) / 16000
        audio = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return Track(
        landmarks=pose.landmarks,
        landmarks_px=points_px,
        centre=pose.centre,
        scale=pose.scale,
        audio=audio,
        usable=usable,
        reasons=np.full(frames, "ok", dtype="<U24"),
        fps=25.0,
        sample_rate_hz=16000,
        audio_source="audio/audio.wav",
    )


def changed(track: Track, **values: object) -> Track:
    fields = {name: getattr(track, name) for name in track.__dataclass_fields__}
    return Track(**(fields | values))  # type: ignore[arg-type]


def reasons_of(track: Track, stride: int = W) -> list[str]:
    starts = window_starts(track.frames, W, stride)
    return validate_windows(track, starts, W, WindowThresholds()).tolist()


def test_a_clean_track_has_only_valid_windows() -> None:
    assert reasons_of(make_track(100)) == ["ok"] * 4
    assert count_reasons(np.array(["ok", "silent", "ok", "blurred", "silent"])) == (2, {"blurred": 1, "silent": 2})


def test_an_unusable_frame_invalidates_its_window_with_the_frame_reason() -> None:
    track = make_track(100)
    usable, reasons = track.usable.copy(), track.reasons.copy()
    usable[30], reasons[30] = False, "blurred"
    usable[31], reasons[31] = False, "turned_away"
    assert reasons_of(changed(track, usable=usable, reasons=reasons)) == ["ok", "blurred", "ok", "ok"]


def test_a_usable_frame_without_points_counts_as_no_face() -> None:
    track = make_track(100)
    points = track.landmarks_px.copy()
    points[99] = np.nan
    assert reasons_of(changed(track, landmarks_px=points)) == ["ok", "ok", "ok", "no_face"]


def test_a_landmark_jump_is_a_tracking_failure_only_inside_one_window() -> None:
    track = make_track(100)
    points = track.landmarks_px.copy()
    points[50:, 10, 0] += 0.6 * track.scale  # one point jumps sideways between frames 49 and 50, and stays
    jumped = changed(track, landmarks_px=points)

    assert reasons_of(jumped) == ["ok"] * 4  # the jump falls between two windows at stride 25
    starts = np.array([0, 40, 50])
    assert validate_windows(jumped, starts, W, WindowThresholds()).tolist() == ["ok", "landmark_jump", "ok"]
    points[50:, 10, 0] -= 0.2 * track.scale  # 0.4 inter-ocular distances: a fast movement, under the threshold
    moved = changed(track, landmarks_px=points)
    assert validate_windows(moved, starts, W, WindowThresholds()).tolist() == ["ok", "ok", "ok"]


def test_silent_and_clipped_audio() -> None:
    track = make_track(100)
    audio = track.audio.copy()
    audio[1 * W * SPF : 2 * W * SPF] = 0.0  # window 1: digital silence
    rng = np.random.default_rng(0)
    audio[2 * W * SPF : 3 * W * SPF] = rng.normal(0, 10 ** (-60 / 20), W * SPF)  # window 2: noise at -60 dBFS
    window3 = audio[3 * W * SPF : 4 * W * SPF]
    window3[: int(0.02 * W * SPF)] = 1.0  # window 3: 2 % of the samples at full scale
    assert reasons_of(changed(track, audio=audio)) == ["ok", "silent", "silent", "clipped"]

    audio = track.audio.copy()
    audio[W * SPF : 2 * W * SPF] = 0.0
    audio[W * SPF + 5 * SPF : W * SPF + 6 * SPF] = 0.05  # one loud 40 ms frame: not silent throughout
    audio[2 * W * SPF : 2 * W * SPF + int(0.005 * W * SPF)] = -1.0  # 0.5 % clipped: tolerated
    assert reasons_of(changed(track, audio=audio)) == ["ok"] * 4


def test_missing_audio_and_priority_of_reasons() -> None:
    track = make_track(100)
    short = changed(track, audio=track.audio[: 100 * SPF - 1])
    assert reasons_of(short) == ["ok", "ok", "ok", "audio_incomplete"]

    audio = track.audio.copy()
    audio[: W * SPF] = 0.0
    usable, reasons = track.usable.copy(), track.reasons.copy()
    usable[3], reasons[3] = False, "no_face"
    assert reasons_of(changed(track, audio=audio, usable=usable, reasons=reasons))[0] == "no_face"


def test_thresholds_come_from_params_and_bad_values_are_refused() -> None:
    thresholds = WindowThresholds.from_params({"max_landmark_jump": 1, "silence_dbfs": -40})
    assert thresholds.to_dict() == {
        "max_landmark_jump": 1.0,
        "silence_dbfs": -40.0,
        "clip_level": 0.99,
        "max_clipped_ratio": 0.01,
    }
    with pytest.raises(BadInput, match="silence_dbfs=10"):
        WindowThresholds.from_params({"silence_dbfs": 10})
    with pytest.raises(BadInput, match="max_landmark_jump='big'"):
        WindowThresholds.from_params({"max_landmark_jump": "big"})


def test_windows_and_their_split_units() -> None:
    assert window_starts(75, 25, 25).tolist() == [0, 25, 50]
    assert window_starts(24, 25, 25).tolist() == []
    assert stride_frames(25, 2) == 12 and stride_frames(24, 2) == 12 and stride_frames(25, 25) == 1
    assert window_starts(75, 25, 12).tolist() == [0, 12, 24, 36, 48]
    # each window belongs to the base window it overlaps most (ties to the earlier one)
    assert base_windows(np.array([0, 12, 24, 36, 48]), 25).tolist() == [0, 0, 1, 1, 2]
    assert base_windows(np.array([0, 12, 24, 36]), 24).tolist() == [0, 0, 1, 1]
    starts = window_starts(500, 25, 5)
    for start, base in zip(starts, base_windows(starts, 25), strict=True):
        overlaps = [max(0, 25 - abs(int(start) - other * 25)) for other in range(21)]
        assert overlaps[base] == max(overlaps)
    assert unit_id("twin-a", 3, 25) == "twin-a:000075"


def test_pose_normalisation_keeps_the_shape_and_drops_position_and_size() -> None:
    face = template()
    frames = np.stack([face, face + (30.0, -5.0), face * 1.2])  # moved, then seen 20 % larger
    pose = normalise_pose(frames, np.ones(3, dtype=bool))

    assert pose.landmarks.shape == (3, 68, 2) and pose.landmarks.dtype == np.float32
    assert pose.scale == pytest.approx(100.0)  # median inter-ocular distance of 100, 100, 120
    np.testing.assert_allclose(pose.landmarks[0], pose.landmarks[1], atol=1e-5)
    np.testing.assert_allclose(pose.landmarks[:, RIGID_POINTS].mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(inter_ocular_px(pose.landmarks.astype(np.float64)), [1.0, 1.0, 1.2], rtol=1e-5)
    np.testing.assert_allclose(pose.landmarks * pose.scale + pose.centre[:, None], frames, atol=1e-3)

    unusable = normalise_pose(frames, np.zeros(3, dtype=bool))
    assert np.isnan(unusable.scale) and np.isnan(unusable.landmarks).all()


def test_landmark_stats_equal_numpy_over_all_frames() -> None:
    rng = np.random.default_rng(3)
    samples = [rng.normal(size=(25, 68, 2)).astype(np.float32) for _ in range(7)]
    samples[3][:, 0, 0] = 5.0  # one coordinate constant within a sample, not across samples
    for sample in samples:
        sample[:, 1, 1] = 2.0  # one constant everywhere: its std is floored
    stats = LandmarkStats()
    for sample in samples:
        stats.add(sample)
    frames = np.concatenate(samples).astype(np.float64)

    assert stats.count == 7 * 25
    np.testing.assert_allclose(stats.mean(), frames.mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(stats.std(), np.maximum(frames.std(axis=0), STD_FLOOR), rtol=1e-6, atol=1e-7)
    assert stats.std()[1, 1] == np.float32(STD_FLOOR)
    assert stats.mean().dtype == np.float32 and stats.std().shape == (68, 2)


def test_npz_files_are_byte_identical_and_tracks_round_trip(tmp_path: Path) -> None:
    arrays = {"a": np.arange(5, dtype=np.float32), "name": np.asarray("twin-1")}
    write_npz(tmp_path / "one.npz", arrays)
    write_npz(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz", allow_pickle=False) as data:
        assert data["a"].tolist() == [0, 1, 2, 3, 4] and str(data["name"]) == "twin-1"

    track = make_track(50)
    save_track(tmp_path / "track.npz", track)
    loaded = load_track(tmp_path / "track.npz")
    assert (loaded.frames, loaded.scale, loaded.fps, loaded.audio_source) == (50, track.scale, 25.0, "audio/audio.wav")
    np.testing.assert_array_equal(loaded.audio, track.audio)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(BadInput, match="facesync/track.npz is not a readable facesync track"):
        load_track(tmp_path / "broken.npz")
