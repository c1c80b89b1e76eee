"""facesync preprocess at pipeline level: th's stages then `track`, on generated face videos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipelines.base import BadInput, Source, StageContext
from pipelines.facesync.pose import RIGID_POINTS, inter_ocular_px
from pipelines.facesync.preprocess import build_pipeline
from pipelines.facesync.track_stage import TrackStage
from pipelines.media.wav import read_wav_16k
from pipelines.registry import load_pipeline
from pipelines.th.face.landmarks_file import load_landmarks
from tests.pipelines.facesync.conftest import FailedTwin, Twin, write_wav

TRACK = "facesync/track.npz"
REPORT = "facesync/validation.json"


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def test_pipeline_shape() -> None:
    pipeline = build_pipeline()

    assert (pipeline.model, pipeline.task, pipeline.output_area) == ("facesync", "preprocess", "processed")
    names = ["video", "audio", "landmarks", "track"]
    assert [stage.name for stage in pipeline.stages] == names
    assert [stage.name for stage in load_pipeline("facesync", "preprocess").stages] == names
    track = pipeline.stage("track")
    assert track.version == "1" and track.resources.gpus == 0
    assert [(spec.name, spec.source, spec.relative) for spec in track.inputs] == [
        ("landmarks", Source.PROCESSED, "face/video_landmarks.npz"),
        ("audio", Source.PROCESSED, "audio/audio.wav"),
        ("video_audio", Source.PROCESSED, "video/audio.wav"),
    ]
    assert [out.relative for out in track.outputs] == [TRACK, REPORT]


def test_track_pairs_the_landmarks_with_the_video_sound_track(astronaut: Twin) -> None:
    run, out = astronaut.run, astronaut.out
    assert run.skipped == {"audio": "no raw audio was ingested"}
    track = load(out / TRACK)
    frames = int(track["landmarks"].shape[0])
    landmarks = load_landmarks(out / "face/video_landmarks.npz")

    assert frames == landmarks.frames == 75  # 3 s at 25 fps, all covered by the 3 s sound track
    assert track["landmarks"].shape == track["landmarks_px"].shape == (frames, 68, 2)
    assert track["landmarks"].dtype == track["landmarks_px"].dtype == track["audio"].dtype == np.float32
    assert track["centre"].shape == (frames, 2) and track["usable"].shape == (frames,)
    assert track["usable"].dtype == bool and track["usable"].all() and set(track["reasons"]) == {"ok"}
    assert (float(track["fps"]), int(track["sample_rate_hz"])) == (25.0, 16000)
    assert str(track["audio_source"]) == "video/audio.wav" and str(track["backend"]) == "mediapipe"
    assert track["audio"].shape == (frames * 640,)
    np.testing.assert_array_equal(track["audio"], read_wav_16k(out / "video/audio.wav")[: frames * 640])
    np.testing.assert_array_equal(track["landmarks_px"], landmarks.points[:frames])
    # normalised: centred on the rigid points, in units of the twin's inter-ocular distance, reversible
    scale = float(track["scale"])
    assert 40 < scale < 200
    np.testing.assert_allclose(track["landmarks"][:, RIGID_POINTS].mean(axis=1), 0.0, atol=1e-5)
    assert np.median(inter_ocular_px(track["landmarks"].astype(np.float64))) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(
        track["landmarks"] * scale + track["centre"][:, None], track["landmarks_px"], atol=1e-3
    )

    report = json.loads((out / REPORT).read_text())
    assert (report["windows"], report["valid"], report["discarded"]) == (3, 3, {})
    assert report["window_reasons"] == [{"start_frame": start, "reason": "ok"} for start in (0, 25, 50)]
    assert report["window_frames"] == report["stride_frames"] == 25 and report["samples_per_window"] == 16000
    metrics = run.results["track"].metrics
    assert metrics["frames_in"] == landmarks.frames and metrics["frames"] == frames
    assert metrics["valid_windows"] == 3


def test_a_raw_audio_upload_is_preferred_to_the_sound_track(grace: Twin) -> None:
    track = load(grace.out / TRACK)
    frames = int(track["landmarks"].shape[0])

    assert grace.run.skipped == {} and str(track["audio_source"]) == "audio/audio.wav"
    assert frames == 100 and track["audio"].shape == (frames * 640,)
    np.testing.assert_array_equal(track["audio"], read_wav_16k(grace.out / "audio/audio.wav")[: frames * 640])
    assert json.loads((grace.out / REPORT).read_text())["valid"] == 4


def test_a_twin_whose_windows_are_all_silent_still_gets_its_track(mute: Twin) -> None:
    report = json.loads((mute.out / REPORT).read_text())

    assert (mute.out / TRACK).is_file() and "track" in mute.run.results
    assert report["windows"] == 2 and report["valid"] == 0 and report["discarded"] == {"silent": 2}
    assert mute.run.results["track"].metrics["discarded"] == {"silent": 2}


def test_a_faceless_video_fails_at_landmarks(blank: FailedTwin) -> None:
    assert "video/video.mp4: a face was found in only 0 of 50 frames" in str(blank.error)
    assert (blank.out / "video/video.mp4").is_file() and (blank.out / "face/quality.json").is_file()
    assert not (blank.out / TRACK).exists()


def copy_of(twin: Twin, folder: Path, *, without: tuple[str, ...] = ()) -> Path:
    copy = folder / "twin"
    shutil.copytree(twin.out, copy)
    for name in (TRACK, REPORT, *without):
        (copy / name).unlink(missing_ok=True)
    return copy


def run_track(folder: Path, **params: object) -> None:
    inputs = {
        name: folder / relative
        for name, relative in (
            ("landmarks", "face/video_landmarks.npz"),
            ("audio", "audio/audio.wav"),
            ("video_audio", "video/audio.wav"),
        )
        if (folder / relative).is_file()
    }
    TrackStage().run(StageContext(inputs=inputs, output_dir=folder, params=params))


def test_track_is_byte_identical_on_a_second_run(astronaut: Twin, tmp_path: Path) -> None:
    copy = copy_of(astronaut, tmp_path)
    run_track(copy)

    assert (copy / TRACK).read_bytes() == (astronaut.out / TRACK).read_bytes()
    assert (copy / REPORT).read_bytes() == (astronaut.out / REPORT).read_bytes()


def test_unrelated_audio_is_refused(astronaut: Twin, tmp_path: Path) -> None:
    copy = copy_of(astronaut, tmp_path)
    write_wav(copy / "audio/audio.wav", np.full(6 * 16000, 1000))  # 6 s of audio for a 3 s video

    with pytest.raises(BadInput, match=r"audio/audio.wav against video/video.mp4: .* not one recording"):
        run_track(copy)


def test_missing_audio_and_bad_parameters_are_refused(astronaut: Twin, tmp_path: Path) -> None:
    copy = copy_of(astronaut, tmp_path, without=("video/audio.wav",))
    with pytest.raises(BadInput, match="the twin has no audio"):
        run_track(copy)
    with pytest.raises(BadInput, match="window_frames=1 must be a whole number"):
        run_track(copy, window_frames=1)
    with pytest.raises(BadInput, match="facesync trains on 16000 Hz audio"):
        run_track(copy, sample_rate_hz=22050)
    (copy / "face/video_landmarks.npz").unlink()
    with pytest.raises(BadInput, match="no face/video_landmarks.npz"):
        run_track(copy)
