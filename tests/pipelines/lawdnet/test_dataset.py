"""lawdnet dataset: DINet's training_data layout where every per-frame folder agrees with the twin's timeline."""

from __future__ import annotations

import csv
import json
import re
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.base import BadInput, Source
from pipelines.dataset_kit.splits import assign_splits
from pipelines.lawdnet import outputs as files
from pipelines.lawdnet.clips import clip_starts
from pipelines.lawdnet.dataset import LawdnetDatasetStage
from pipelines.lawdnet.members import MEMBER_FILES, load_member
from pipelines.lawdnet.openface_csv import read_landmarks_csv, write_landmarks_csv
from pipelines.lawdnet.training_json import video_entry
from pipelines.registry import load_pipeline
from tests.pipelines.lawdnet.twins import Twin
from tests.support.local_pipelines import LocalRun, run_pipeline

USABLE = ("own", "long", "short")
PLATFORM_EXCLUDED = {"faceless": "video/video.mp4: a face was found in only 0 of 50 frames (0 %; at least 90 % needed)"}
PARAMS = {"dataset": "demo", "val_percent": 34, "seed": 7, "excluded": PLATFORM_EXCLUDED}


@dataclass(frozen=True)
class Built:
    folder: Path
    run: LocalRun
    members: dict[str, Path]

    @property
    def manifest(self) -> dict:
        return json.loads((self.folder / "manifest.json").read_text())

    def clips(self, name: str = files.TRAINING_JSON) -> dict:
        return json.loads((self.folder / name).read_text())


def _with_success(source: Path, target: Path, success: np.ndarray) -> Path:
    """A copy of a twin's preprocess folder whose CSV marks frames usable or not as `success` says."""
    shutil.copytree(source, target)
    rows = read_landmarks_csv(source / files.LANDMARKS_CSV, "csv")
    write_landmarks_csv(target / files.LANDMARKS_CSV, type(rows)(rows.timestamp, rows.confidence, success, rows.points))
    return target


@pytest.fixture(scope="module")
def members(twins: dict[str, Twin], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three good twins, plus four present but unusable: no usable frame, a bad frame every 8th (no run of 9
    usable frames), a preprocess without its crops, and one whose crops.mp4 was cut in half after it was made (its
    index still lists every frame: only decoding finds out)."""
    root = tmp_path_factory.mktemp("lawdnet_members")
    own = twins["own"].folder
    frames = json.loads((own / files.TIMELINE_JSON).read_text())["frames"]
    partial = root / "partial"
    shutil.copytree(own, partial)
    (partial / files.CROPS_MP4).unlink()
    truncated = root / "truncated"
    shutil.copytree(own, truncated)
    crops = (own / files.CROPS_MP4).read_bytes()
    (truncated / files.CROPS_MP4).write_bytes(crops[: len(crops) // 2])
    return {
        **{name: twins[name].folder for name in USABLE},
        "blind": _with_success(own, root / "blind", np.zeros(frames, dtype=bool)),
        "flicker": _with_success(own, root / "flicker", np.arange(frames) % 8 != 7),
        "partial": partial,
        "truncated": truncated,
    }


@pytest.fixture(scope="module")
def built(members: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Built:
    folder = tmp_path_factory.mktemp("lawdnet_dataset")
    return Built(folder, run_pipeline(("lawdnet", "dataset"), folder, members=members, params=PARAMS), members)


def test_pipeline_shape() -> None:
    pipeline = load_pipeline("lawdnet", "dataset")

    assert (pipeline.model, pipeline.task, pipeline.output_area) == ("lawdnet", "dataset", "datasets")
    (stage,) = pipeline.stages
    assert isinstance(stage, LawdnetDatasetStage) and stage.resources.gpus == 0
    assert all(spec.source is Source.MEMBER for spec in stage.inputs)
    assert {spec.relative for spec in stage.inputs} >= {files.TIMELINE_JSON, files.CROPS_MP4, files.AUDIO_FEATURES}
    assert [o.relative for o in stage.outputs if o.is_folder] == list(files.DATASET_FOLDERS)


def _numbered(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize("twin", USABLE)
def test_every_per_frame_folder_has_the_timeline_frames(built: Built, twin: str) -> None:
    frames = json.loads((built.members[twin] / files.TIMELINE_JSON).read_text())["frames"]
    root = built.folder
    names = [f"{i:06d}.jpg" for i in range(frames)]

    assert _numbered(root / files.FRAME_DIR / twin) == names
    assert _numbered(root / files.CROP_FACE_DIR / twin) == names
    with (root / files.LANDMARK_DIR / f"{twin}.csv").open(newline="") as handle:
        assert len(list(csv.reader(handle))) == frames + 1  # a header and one row per frame
    features = np.loadtxt(root / files.DEEPSPEECH_DIR / f"{twin}_deepspeech.txt")
    assert features.shape == (frames, 29)
    np.testing.assert_allclose(features, np.load(built.members[twin] / files.AUDIO_FEATURES), rtol=1e-6)
    assert np.load(root / files.CROP_LANDMARK_DIR / f"{twin}.npy").shape == (frames, 68, 2)
    with wave.open(str(root / files.AUDIO_DIR / f"{twin}.wav"), "rb") as sound:
        assert (sound.getnframes(), sound.getframerate(), sound.getnchannels()) == (frames * 640, 16000, 1)
    crop = cv2.imread(str(root / files.CROP_FACE_DIR / twin / names[-1]))
    frame = cv2.imread(str(root / files.FRAME_DIR / twin / names[0]))
    assert crop.shape == (416, 320, 3) and frame.shape == (384, 384, 3)


def test_training_json_holds_clips_of_usable_frames_that_exist(built: Built) -> None:
    documents = {**built.clips(), **built.clips(files.VALIDATION_JSON)}
    assert sorted(documents) == sorted(USABLE)
    for twin, video in documents.items():
        usable = read_landmarks_csv(built.members[twin] / files.LANDMARKS_CSV, "csv").success
        features = np.load(built.members[twin] / files.AUDIO_FEATURES)
        assert video["video_clip_num"] == len(video["clip_data_list"]) >= 6
        covered: set[int] = set()
        for clip in video["clip_data_list"]:
            start = clip["start_frame"]
            expected = [f"{twin}/{i:06d}.jpg" for i in range(start, start + 9)]
            assert clip["frame_name_list"] == expected
            assert clip["frame_path_list"] == [f"{files.CROP_FACE_DIR}{name}" for name in expected]
            assert all((built.folder / path).is_file() for path in clip["frame_path_list"])
            assert usable[start : start + 9].all()
            np.testing.assert_allclose(clip["deep_speech_list"], features[start : start + 9], rtol=1e-6)
            assert covered.isdisjoint(range(start, start + 9))
            covered.update(range(start, start + 9))
    # every frame of the sound-track twin is usable: DINet's grid of whole 9-frame clips from frame 0
    assert [clip["start_frame"] for clip in documents["own"]["clip_data_list"]] == list(range(0, 75 - 8, 9))


def test_excluded_twins_and_their_reasons(built: Built) -> None:
    manifest = built.manifest
    excluded = manifest["excluded"]

    assert sorted(manifest["twins"]) == sorted(USABLE)
    assert excluded["faceless"] == PLATFORM_EXCLUDED["faceless"]
    assert excluded["blind"].startswith("none of its 75 frames has a usable face")
    assert excluded["flicker"].startswith("only 0 clip(s) of 9 consecutive usable frames (66 of its 75 frames")
    assert excluded["partial"] == (
        f"its lawdnet preprocess has no {files.CROPS_MP4}: run the twin's lawdnet preprocess"
    )
    broken = rf"{files.CROPS_MP4} is broken \('crops.mp4' ends after \d+ of the 75 frames"
    assert re.match(broken, excluded["truncated"])
    assert excluded["truncated"].endswith("run the twin's lawdnet preprocess again")
    for twin in ("blind", "flicker", "partial", "faceless", "truncated"):
        assert not list(built.folder.rglob(f"*{twin}*")), f"files of excluded twin {twin}"
    metrics = built.run.results["lawdnet_dataset"].metrics
    assert (metrics["twins_included"], metrics["twins_excluded"]) == (3, 5)
    assert metrics["frames_in"] == sum(manifest["twins"][twin]["taken"]["video_frames"] for twin in USABLE) == 225


def test_split_sizes_and_manifest(built: Built) -> None:
    manifest = built.manifest
    expected = assign_splits(list(USABLE), {"train": 0.66, "val": 0.34}, 7)

    assert manifest["splits"] == {"train": 2, "val": 1}
    assert sorted(built.clips()) == sorted(expected["train"])
    assert sorted(built.clips(files.VALIDATION_JSON)) == expected["val"]
    assert {twin: entry["taken"]["split"] for twin, entry in manifest["twins"].items()} == {
        twin: name for name, twins in expected.items() for twin in twins
    }
    taken = {twin: entry["taken"] for twin, entry in manifest["twins"].items()}
    assert taken["short"]["dropped_video_frames"] == 8 and taken["long"]["dropped_audio_samples"] == 4800
    assert manifest["clips"]["train"] + manifest["clips"]["val"] == sum(entry["clips"] for entry in taken.values())
    assert manifest["audio_features"]["name"] == "mel" and manifest["crop"] == {"height": 416, "width": 320}
    assert manifest["twins"]["own"]["inputs"]["crops"]["key"] == "processed/own/preprocessed/lawdnet/lawdnet/crops.mp4"
    assert manifest["files"][files.CROP_FACE_DIR.rstrip("/")] == sum(entry["frames"] for entry in taken.values())
    reported = set(built.run.results["lawdnet_dataset"].outputs)
    on_disk = {path.relative_to(built.folder).as_posix() for path in built.folder.rglob("*") if path.is_file()}
    assert reported == on_disk


def test_the_same_inputs_and_seed_give_the_same_dataset(built: Built, tmp_path: Path) -> None:
    again = tmp_path / "again"
    run_pipeline(("lawdnet", "dataset"), again, members=built.members, params=PARAMS)

    for name in (files.TRAINING_JSON, files.VALIDATION_JSON, "manifest.json"):
        assert (again / name).read_bytes() == (built.folder / name).read_bytes(), name
    for twin in USABLE:
        crop = f"{files.CROP_FACE_DIR}{twin}/000040.jpg"
        assert (again / crop).read_bytes() == (built.folder / crop).read_bytes()


def test_no_usable_twin_names_each_twin_and_why(members: dict[str, Path], tmp_path: Path) -> None:
    chosen = {"blind": members["blind"]}
    params = {"dataset": "x", "excluded": PLATFORM_EXCLUDED}
    with pytest.raises(BadInput, match="no usable twin for lawdnet dataset 'x': blind: none of its 75 .*; faceless: "):
        run_pipeline(("lawdnet", "dataset"), tmp_path, members=chosen, params=params)
    assert not list(tmp_path.iterdir())


def test_twins_made_with_other_features_are_not_mixed_in(members: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="its audio features are 'mel' but this dataset takes 'deepspeech'"):
        run_pipeline(
            ("lawdnet", "dataset"),
            tmp_path,
            members={"own": members["own"]},
            params={"dataset": "x", "audio_features": "deepspeech"},
        )


def test_val_percent_that_leaves_no_training_twin_is_refused(members: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="val_percent=90 leaves none of the 1 usable twin"):
        run_pipeline(("lawdnet", "dataset"), tmp_path, members={"own": members["own"]}, params={"val_percent": 90})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"clip_frames": 4}, "clip_frames=4 must be a whole number from 5 to 250"),
        ({"val_percent": 100}, "val_percent=100 must be a percentage"),
        ({"jpeg_quality": "high"}, "jpeg_quality='high'"),
        ({"path_prefix": 3}, "path_prefix=3 must be a string"),
    ],
)
def test_bad_parameters_are_refused(members: dict[str, Path], tmp_path: Path, params: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        run_pipeline(("lawdnet", "dataset"), tmp_path, members={"own": members["own"]}, params=params)


def test_clips_are_laid_within_runs_of_usable_frames() -> None:
    usable = np.ones(40, dtype=bool)
    usable[[5, 30]] = False  # runs 0-4, 6-29, 31-39

    assert clip_starts(usable, 9) == [6, 15, 31]
    assert clip_starts(np.ones(18, dtype=bool), 9) == [0, 9]  # DINet's range(9, 18, 9) would drop the second
    assert clip_starts(np.zeros(20, dtype=bool), 5) == []


def test_path_prefix_puts_the_dataset_where_the_lawdnet_repository_expects_it(members: dict[str, Path]) -> None:
    paths = {name: members["own"] / relative for name, relative in MEMBER_FILES.items()}
    member = load_member("own", paths, audio_features="mel", clip_frames=9, min_clips=1)

    entry = video_entry(member, 9, "./asserts/training_data/")

    first = entry["clip_data_list"][0]
    assert first["frame_path_list"][0] == "./asserts/training_data/split_video_25fps_crop_face/own/000000.jpg"
    assert first["frame_name_list"][0] == "own/000000.jpg"
