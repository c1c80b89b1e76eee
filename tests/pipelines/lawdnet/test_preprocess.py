"""lawdnet preprocess: every per-frame file has the timeline's frame count, whichever stream was longer."""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from pipelines.base import BadInput, MissingWeights, Source, StageContext
from pipelines.lawdnet import audio_features
from pipelines.lawdnet import outputs as files
from pipelines.lawdnet.alignment import (
    TH_CROP_PX,
    WINDOW_LEFT,
    WINDOW_TOP,
    apply_transforms,
    crop_transforms,
    warp_crop,
)
from pipelines.lawdnet.audio_stage import LawdnetAudioStage
from pipelines.lawdnet.face_stage import LawdnetFaceStage
from pipelines.lawdnet.openface_csv import HEADER, read_landmarks_csv
from pipelines.lawdnet.preprocess import build_pipeline
from pipelines.media.frames import read_frames, video_info
from pipelines.media.synthetic import make_video
from pipelines.media.wav import read_pcm16, to_float
from pipelines.registry import load_pipeline
from pipelines.th import outputs as th_files
from pipelines.th.face.align import crop as th_crop
from pipelines.th.face.align import estimate_transforms, invert
from pipelines.th.face.landmarks_file import load_landmarks
from tests.pipelines.lawdnet.framing import assert_framed
from tests.pipelines.lawdnet.twins import CLIP_S, Twin, Uploads
from tests.support.local_pipelines import run_pipeline

FPS = 25
SAMPLES_PER_FRAME = 640


def test_pipeline_shape() -> None:
    pipeline = load_pipeline("lawdnet", "preprocess")

    assert (pipeline.model, pipeline.task, pipeline.output_area) == ("lawdnet", "preprocess", "processed")
    assert [stage.name for stage in pipeline.stages] == ["video", "audio", "landmarks", "lawdnet_audio", "lawdnet_face"]
    assert [stage.name for stage in build_pipeline().stages] == [stage.name for stage in pipeline.stages]
    for stage in pipeline.stages:
        assert stage.resources.gpus == 0
    assert [o.relative for o in pipeline.stage("lawdnet_audio").outputs] == [
        files.TIMELINE_JSON,
        files.AUDIO_WAV,
        files.AUDIO_FEATURES,
    ]
    assert [o.relative for o in pipeline.stage("lawdnet_face").outputs] == [
        files.LANDMARKS_CSV,
        files.CROPS_MP4,
        files.CROP_LANDMARKS,
    ]
    graph = next(spec for spec in LawdnetAudioStage.inputs if spec.name == "deepspeech_graph")
    assert (graph.source, graph.relative, graph.optional) == (Source.COMMON, "deepspeech/output_graph.pb", True)


def _wav_samples(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path), "rb") as handle:
        return handle.getnframes(), handle.getframerate(), handle.getnchannels()


def _check_consistent(folder: Path) -> dict[str, object]:
    """Every per-frame output of one twin has exactly the timeline's frames; returns the timeline."""
    timeline = json.loads((folder / files.TIMELINE_JSON).read_text())
    frames = timeline["frames"]
    assert (timeline["fps"], timeline["sample_rate_hz"]) == (FPS, 16000)
    assert timeline["samples"] == frames * SAMPLES_PER_FRAME
    assert _wav_samples(folder / files.AUDIO_WAV) == (frames * SAMPLES_PER_FRAME, 16000, 1)

    features = np.load(folder / files.AUDIO_FEATURES)
    assert features.shape == (frames, 29) and features.dtype == np.float32
    assert np.isfinite(features).all()

    with (folder / files.LANDMARKS_CSV).open(newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == HEADER and len(HEADER) == 141
    rows = np.array(table[1:], dtype=np.float64)
    assert rows.shape == (frames, 141)
    assert np.array_equal(rows[:, 0], np.arange(1, frames + 1))  # OpenFace's 1-based frame numbers
    np.testing.assert_allclose(rows[:, 2], np.arange(frames) / FPS, atol=1e-3)

    crop_points = np.load(folder / files.CROP_LANDMARKS)
    assert crop_points.shape == (frames, 68, 2) and crop_points.dtype == np.float32

    crops = video_info(folder / files.CROPS_MP4)
    assert (crops.frames, crops.width, crops.height, round(crops.fps, 3)) == (frames, 320, 416, FPS)
    assert frames == timeline["video_frames"] - timeline["dropped_video_frames"]
    assert timeline["audio_samples"] - timeline["dropped_audio_samples"] == timeline["samples"]
    return timeline


def test_own_sound_track_gives_one_row_per_frame(twins: dict[str, Twin]) -> None:
    twin = twins["own"]
    timeline = _check_consistent(twin.folder)

    assert timeline["audio_source"] == "video/audio.wav"
    assert timeline["video_frames"] == CLIP_S * FPS
    assert timeline["frames"] >= CLIP_S * FPS - 1  # the AAC track ends within a frame of the video
    face = twin.run.results["lawdnet_face"].metrics
    assert face["frames_in"] == timeline["video_frames"]
    assert face["usable_frames"] == timeline["frames"]  # a still, frontal, well-lit face: every frame usable
    # the landmarks sit on the face: inside the crop
    crop_points = np.load(twin.folder / files.CROP_LANDMARKS)
    assert (crop_points[..., 0] > 0).all() and (crop_points[..., 0] < 320).all()
    assert (crop_points[..., 1] > 0).all() and (crop_points[..., 1] < 416).all()


@pytest.mark.parametrize("name", ["own", "long", "short"])
def test_usable_faces_are_framed_for_lawdnet(twins: dict[str, Twin], name: str) -> None:
    """The mouth well inside LawDNet's mouth region, the eyes level and above it, the face centred."""
    folder = twins[name].folder
    usable = read_landmarks_csv(folder / files.LANDMARKS_CSV, "csv").success
    assert usable.all()
    assert_framed(np.load(folder / files.CROP_LANDMARKS), usable)


def test_crops_are_a_window_of_th_aligned_crop(twins: dict[str, Twin]) -> None:
    """The framing rule is th's (eye centres and mouth corners, smoothed over time), windowed: each crop is rows
    WINDOW_TOP.. and columns WINDOW_LEFT.. of th's aligned crop rendered TH_CROP_PX wide."""
    folder = twins["own"].folder
    frames = json.loads((folder / files.TIMELINE_JSON).read_text())["frames"]
    landmarks = load_landmarks(folder / th_files.VIDEO_LANDMARKS)
    points, found = landmarks.points[:frames].astype(np.float64), landmarks.found[:frames]
    unit = estimate_transforms(points, found, FPS)

    transforms = crop_transforms(points, found, FPS)
    stored = np.load(folder / files.CROP_LANDMARKS)
    np.testing.assert_allclose(stored, apply_transforms(transforms, points), atol=1e-3)
    frame = next(iter(read_frames(folder / th_files.VIDEO_MP4, 8)))[5]
    window = th_crop(frame, unit[5], TH_CROP_PX)[WINDOW_TOP : WINDOW_TOP + 416, WINDOW_LEFT : WINDOW_LEFT + 320]
    assert np.abs(warp_crop(frame, transforms[5]).astype(int) - window).max() <= 1
    th_centre = invert(unit[5]) @ [0.5, 0.5, 1.0]  # the frame point at the middle of th's crop
    np.testing.assert_allclose(transforms[5] @ [*th_centre, 1.0], [159.5, 119.5], atol=1e-6)  # centred, row 119.5


def test_a_video_without_any_face_cannot_be_cropped() -> None:
    with pytest.raises(BadInput, match="no face was found in any of the 3 frames of 'talk.mp4'"):
        crop_transforms(np.full((3, 68, 2), np.nan), np.zeros(3, dtype=bool), FPS, source="'talk.mp4'")


@pytest.mark.parametrize(
    ("name", "frames", "dropped_video", "dropped_samples"),
    [
        ("long", 75, 0, 52800 - 75 * 640),  # audio 3.3 s: every frame kept, the last 0.3 s of audio cut
        ("short", 67, 8, 43200 - 67 * 640),  # audio 2.7 s: frames after 2.68 s dropped, and the last part-frame
    ],
)
def test_audio_longer_or_shorter_than_the_video(
    twins: dict[str, Twin], name: str, frames: int, dropped_video: int, dropped_samples: int
) -> None:
    timeline = _check_consistent(twins[name].folder)

    assert timeline["audio_source"] == "audio/audio.wav"
    assert (timeline["frames"], timeline["video_frames"]) == (frames, 75)
    assert timeline["dropped_video_frames"] == dropped_video
    assert timeline["dropped_audio_samples"] == dropped_samples


def test_audio_is_cut_not_resampled_and_features_follow_it(twins: dict[str, Twin]) -> None:
    folder = twins["long"].folder
    with wave.open(str(folder / "audio" / "audio.wav"), "rb") as whole, wave.open(
        str(folder / files.AUDIO_WAV), "rb"
    ) as cut:
        kept = cut.getnframes()
        assert cut.readframes(kept) == whole.readframes(kept)  # the first samples, byte for byte
    mel = audio_features.MelExtractor().extract(to_float(read_pcm16(folder / files.AUDIO_WAV, 16000, name="audio.wav")))
    features = np.load(folder / files.AUDIO_FEATURES)
    # at 100 rows/s the centre of frame i is row 4i + 2: the aligned row is exactly that row
    np.testing.assert_allclose(features, mel[4 * np.arange(len(features)) + 2], rtol=1e-5, atol=1e-5)
    # the tone is switched on and off 4 times a second: loud and quiet frames differ by far more than noise
    energy = features.mean(axis=1)
    assert energy.max() - energy.min() > 3


def test_preprocess_is_deterministic(twins: dict[str, Twin], uploads: Uploads, tmp_path: Path) -> None:
    """Same upload, same bytes: the platform skips stages whose inputs' checksums did not change."""
    again = tmp_path / "again"
    run_pipeline(("lawdnet", "preprocess"), again, raw={"video": uploads.face_mute, "audio": uploads.audio_short})
    for relative in (files.TIMELINE_JSON, files.AUDIO_WAV, files.AUDIO_FEATURES, files.LANDMARKS_CSV):
        assert (again / relative).read_bytes() == (twins["short"].folder / relative).read_bytes(), relative
    for relative in (files.CROPS_MP4, files.CROP_LANDMARKS):
        assert (again / relative).read_bytes() == (twins["short"].folder / relative).read_bytes(), relative


def test_faceless_video_fails_the_preprocess(tmp_path: Path) -> None:
    """The platform leaves a twin whose preprocess failed out of datasets, with this reason."""
    video = make_video(tmp_path / "pattern.mp4", seconds=2.0)

    with pytest.raises(BadInput, match="a face was found in only 0 of 50 frames"):
        run_pipeline(("lawdnet", "preprocess"), tmp_path / "out", raw={"video": video})
    assert (tmp_path / "out" / "face" / "quality.json").exists()  # the landmarks stage failed, with its report
    assert not (tmp_path / "out" / files.TIMELINE_JSON).exists()


def _audio_context(twin: Twin, output: Path, *, graph: Path | None = None, **params: object) -> StageContext:
    inputs = {"landmarks": twin.folder / "face" / "video_landmarks.npz", "video_audio": twin.folder / "video/audio.wav"}
    if graph is not None:
        inputs["deepspeech_graph"] = graph
    return StageContext(inputs=inputs, output_dir=output, params=params)


def test_deepspeech_without_its_graph_is_missing_weights(twins: dict[str, Twin], tmp_path: Path) -> None:
    with pytest.raises(MissingWeights) as raised:
        LawdnetAudioStage().run(_audio_context(twins["own"], tmp_path, audio_features="deepspeech"))

    assert raised.value.names == ("deepspeech/output_graph.pb",)
    assert "common/lawdnet/deepspeech/output_graph.pb" in str(raised.value)
    assert not (tmp_path / files.TIMELINE_JSON).exists()


def test_deepspeech_without_tensorflow_says_to_install_it(
    twins: dict[str, Twin], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = tmp_path / "output_graph.pb"
    graph.write_bytes(b"frozen graph")
    context = _audio_context(twins["own"], tmp_path / "out", graph=graph, audio_features="deepspeech")
    monkeypatch.setattr(audio_features, "tensorflow_installed", lambda: False)

    with pytest.raises(BadInput, match="tensorflow is not installed on this worker; install tensorflow 1.15"):
        LawdnetAudioStage().run(context)

    monkeypatch.setattr(audio_features, "tensorflow_installed", lambda: True)
    with pytest.raises(BadInput, match="running the DeepSpeech graph is not built"):
        LawdnetAudioStage().run(context)
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"audio_features": "hubert"}, "audio_features='hubert' is unknown; use one of mel, deepspeech"),
        ({"fps": 30}, "LawDNet trains on 25 fps"),
        ({"sample_rate_hz": 22050}, "computed from 16000 Hz audio"),
    ],
)
def test_bad_parameters_are_refused(twins: dict[str, Twin], tmp_path: Path, params: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        LawdnetAudioStage().run(_audio_context(twins["own"], tmp_path, **params))


def test_a_twin_without_sound_is_refused(twins: dict[str, Twin], tmp_path: Path) -> None:
    context = StageContext(
        inputs={"landmarks": twins["own"].folder / "face" / "video_landmarks.npz"}, output_dir=tmp_path
    )
    with pytest.raises(BadInput, match="the twin has no sound"):
        LawdnetAudioStage().run(context)
    with pytest.raises(BadInput, match="no video"):
        LawdnetFaceStage().run(StageContext(inputs={"timeline": tmp_path / "t.json"}, output_dir=tmp_path))
