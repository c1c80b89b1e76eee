"""bilayer dataset at pipeline level: the VoxCeleb2 tree a bi-layer training run reads, split by person."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.base import BadInput
from pipelines.bilayer.samples_file import Samples, save_samples
from pipelines.dataset_kit.splits import assign_splits
from pipelines.registry import load_pipeline
from tests.support.local_pipelines import LocalRun, run_pipeline

PERSONS = [f"person{i}" for i in range(5)]
TREES = {"imgs": ".jpg", "keypoints": ".npy", "segs": ".png"}


@pytest.fixture(scope="module")
def five_persons(face_twin: LocalRun, tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """Five twins (the same preprocess folder under five ids), the default 20 % test split, sequences of 4."""
    out = tmp_path_factory.mktemp("dataset_five")
    members = {twin: face_twin.out for twin in PERSONS}
    return run_pipeline(
        ("bilayer", "dataset"), out, members=members, params={"dataset": "five", "sequence_length": 4}
    )


def stems(root: Path, tree: str) -> list[str]:
    suffix = TREES[tree]
    return sorted(p.relative_to(root / tree).as_posix().removesuffix(suffix) for p in (root / tree).rglob(f"*{suffix}"))


def tree_digest(root: Path) -> dict[str, str]:
    files = (p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_pipeline_shape() -> None:
    pipeline = load_pipeline("bilayer", "dataset")

    assert (pipeline.model, pipeline.task, pipeline.output_area) == ("bilayer", "dataset", "datasets")
    (stage,) = pipeline.stages
    assert [o.relative for o in stage.outputs] == ["imgs/", "keypoints/", "segs/", "manifest.json"]
    assert [(i.relative, i.source.value) for i in stage.inputs] == [("bilayer/samples.npz", "member")]


def test_three_trees_hold_the_same_frames(five_persons: LocalRun, face_samples: Samples) -> None:
    root = five_persons.out
    imgs = stems(root, "imgs")

    assert imgs == stems(root, "keypoints") == stems(root, "segs")
    assert len(imgs) == len(PERSONS) * face_samples.count
    assert sorted(five_persons.results["dataset"].outputs) == sorted(
        [f"{tree}/{stem}{suffix}" for tree, suffix in TREES.items() for stem in imgs] + ["manifest.json"]
    )
    # 15 consecutive kept frames in sequences of at most 4: 00001..00004 holding 4, 4, 4 and 3 frames, numbered 0..n-1
    phase, person, video_id, _, _ = imgs[0].split("/")
    assert video_id == face_samples.video_id
    sequences = sorted({stem.rsplit("/", 1)[0] for stem in imgs if stem.startswith(f"{phase}/{person}/")})
    assert [s.rsplit("/", 1)[1] for s in sequences] == ["00001", "00002", "00003", "00004"]
    frames = [sorted(int(s.rsplit("/", 1)[1]) for s in imgs if s.startswith(seq + "/")) for seq in sequences]
    assert frames == [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2]]


def test_files_hold_what_the_loader_reads(five_persons: LocalRun, face_samples: Samples) -> None:
    root = five_persons.out
    stem = next(s for s in stems(root, "imgs") if s.endswith("/00002/1"))  # the 6th kept frame of its twin

    with Image.open(root / "imgs" / f"{stem}.jpg") as jpeg:
        assert (jpeg.format, jpeg.mode, jpeg.size) == ("JPEG", "RGB", (256, 256))
        pixels = np.asarray(jpeg)
    keypoints = np.load(root / "keypoints" / f"{stem}.npy", allow_pickle=False)
    with Image.open(root / "segs" / f"{stem}.png") as png:
        assert (png.format, png.mode, png.size) == ("PNG", "L", (256, 256))
        mask = np.asarray(png)

    assert np.abs(pixels.astype(int) - face_samples.imgs[5]).mean() < 2.0  # JPEG at quality 95
    assert keypoints.shape == (68, 2) and keypoints.dtype == np.float32
    assert np.array_equal(keypoints, face_samples.keypoints[5])
    assert (keypoints >= 0).all() and (keypoints <= 255).all()
    assert set(np.unique(mask).tolist()) == {0, 255}
    assert 0.1 < np.mean(mask == 255) < 0.95
    assert np.array_equal(mask, face_samples.segs[5])


def test_whole_persons_are_split(five_persons: LocalRun, face_samples: Samples) -> None:
    root = five_persons.out
    manifest = json.loads((root / "manifest.json").read_text())
    phases = {twin: entry["taken"]["phase"] for twin, entry in manifest["twins"].items()}

    assert manifest["splits"] == {"train": 4, "test": 1}  # round(0.2 x 5) persons to test
    assert manifest["frames_per_split"] == {"train": 4 * face_samples.count, "test": face_samples.count}
    assert {twin for twin, phase in phases.items() if phase == "test"} == set(
        assign_splits(PERSONS, {"test": 0.2, "train": 0.8}, 0)["test"]
    )
    for tree in TREES:
        for phase in ("train", "test"):
            assert sorted(p.name for p in (root / tree / phase).iterdir()) == sorted(
                twin for twin, p in phases.items() if p == phase
            )
    assert manifest["files"] == {tree: len(PERSONS) * face_samples.count for tree in TREES}
    assert manifest["twins"]["person0"]["inputs"]["samples"]["key"].endswith("bilayer/samples.npz")


def test_same_inputs_same_dataset(five_persons: LocalRun, face_twin: LocalRun, tmp_path: Path) -> None:
    members = {twin: face_twin.out for twin in reversed(PERSONS)}  # the order twins are listed in does not matter
    params = {"dataset": "five", "sequence_length": 4}

    run_pipeline(("bilayer", "dataset"), tmp_path, members=members, params=params)

    assert tree_digest(tmp_path) == tree_digest(five_persons.out)


def test_phase_puts_everyone_in_it(face_twin: LocalRun, tmp_path: Path) -> None:
    members = {twin: face_twin.out for twin in PERSONS[:3]}

    run_pipeline(("bilayer", "dataset"), tmp_path, members=members, params={"dataset": "x", "phase": "train"})

    for tree in TREES:
        assert [p.name for p in (tmp_path / tree).iterdir()] == ["train"]
        assert sorted(p.name for p in (tmp_path / tree / "train").iterdir()) == PERSONS[:3]
    assert json.loads((tmp_path / "manifest.json").read_text())["splits"] == {"train": 3, "test": 0}


def test_twins_without_usable_frames_are_excluded_with_their_reason(
    face_twin: LocalRun, late_face_twin: LocalRun, tmp_path: Path
) -> None:
    members = {"ann": face_twin.out, "late": late_face_twin.out, "never": tmp_path / "no_preprocess"}
    params = {"dataset": "x", "excluded": {"faceless": "preprocess failed: no face in the video"}}
    out = tmp_path / "dataset"

    result = run_pipeline(("bilayer", "dataset"), out, members=members, params=params).results["dataset"]

    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["twins"]) == ["ann"]
    excluded = manifest["excluded"]
    assert sorted(excluded) == ["faceless", "late", "never"]
    assert excluded["faceless"] == "preprocess failed: no face in the video"
    assert "none of its 1 sampled frames" in excluded["late"] and "no_face 1" in excluded["late"]
    assert "wrote no bilayer/samples.npz" in excluded["never"]
    assert result.metrics["excluded"] == 3
    for tree in TREES:
        assert {p.parts[-1] for p in (out / tree).glob("*/*")} == {"ann"}


def test_no_usable_twin_is_bad_input(late_face_twin: LocalRun, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no usable twin .*late: none of its 1 sampled frames .*no_face 1"):
        run_pipeline(("bilayer", "dataset"), tmp_path, members={"late": late_face_twin.out}, params={"dataset": "x"})


def test_a_rejected_frame_starts_a_new_sequence(face_samples: Samples, tmp_path: Path) -> None:
    keep = np.array([i for i in range(face_samples.count) if i != 6])  # frame 30 of 0, 5, ..., 70 was rejected
    reasons = face_samples.sampled_reason.copy()
    reasons[6] = "blurred"
    gapped = dataclasses.replace(
        face_samples,
        imgs=face_samples.imgs[keep],
        keypoints=face_samples.keypoints[keep],
        segs=face_samples.segs[keep],
        frame_index=face_samples.frame_index[keep],
        boxes=face_samples.boxes[keep],
        sampled_reason=reasons,
    )
    member = tmp_path / "member"
    (member / "bilayer").mkdir(parents=True)
    save_samples(member / "bilayer/samples.npz", gapped)
    out = tmp_path / "dataset"

    run_pipeline(
        ("bilayer", "dataset"), out, members={"ann": member}, params={"dataset": "x", "sequence_length": 4}
    )

    video = out / "imgs/train/ann" / face_samples.video_id
    sizes = [len(list(sequence.iterdir())) for sequence in sorted(video.iterdir())]
    assert sizes == [4, 2, 4, 4]  # frames 0-15 | 20-25, cut by the gap | 35-50 | 55-70


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"phase": "val"}, "phase='val'"),
        ({"phase": "train", "test_percent": 0.5}, "contradict"),
        ({"test_percent": 20}, "test_percent=20"),
        ({"jpeg_quality": 0}, "jpeg_quality=0"),
        ({"sequence_length": 0}, "sequence_length=0"),
    ],
)
def test_bad_parameters(params: dict[str, object], message: str, face_twin: LocalRun, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=message):
        run_pipeline(
            ("bilayer", "dataset"), tmp_path, members={"ann": face_twin.out}, params={"dataset": "x", **params}
        )


def test_crops_of_another_size_are_excluded(face_twin: LocalRun, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cropped at 256x256, the dataset is 128x128"):
        run_pipeline(
            ("bilayer", "dataset"), tmp_path, members={"ann": face_twin.out}, params={"dataset": "x", "image_size": 128}
        )
