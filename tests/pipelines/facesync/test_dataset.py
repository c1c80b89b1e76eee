"""facesync dataset task at pipeline level, on the session's preprocessed twins (see conftest):

    astronaut  75 frames -> 3 base windows of 25, all valid
    grace     100 frames -> 4 base windows, all valid
    mute       50 frames -> 2 windows, all silent: excluded
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.dataset_kit.splits import split_sizes
from pipelines.facesync.dataset import build_pipeline
from pipelines.facesync.stats import STD_FLOOR
from tests.pipelines.facesync.conftest import DATASET, FailedTwin, Twin
from tests.support.local_pipelines import LocalRun, run_pipeline

W = 25


def build(out: Path, members: dict[str, Path], **params: Any) -> LocalRun:
    return run_pipeline(DATASET, out, members=members, params={"dataset": out.name, **params})


def manifest_of(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return document


def samples_in(out: Path, split: str) -> list[str]:
    return sorted(path.name for path in (out / split).glob("*.npz"))


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def train_landmarks(out: Path) -> np.ndarray:
    return np.concatenate([load(path)["landmarks"] for path in sorted((out / "train").glob("*.npz"))]).astype(
        np.float64
    )


def digest(out: Path) -> dict[str, str]:
    return {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def members(astronaut: Twin, grace: Twin, mute: Twin) -> dict[str, Path]:
    return {"astronaut": astronaut.out, "grace": grace.out, "mute": mute.out}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, members: dict[str, Path], blank: FailedTwin) -> LocalRun:
    """Factor 1, seed 0, with the faceless twin excluded by the platform (its preprocess failed)."""
    out = tmp_path_factory.mktemp("facesync_dataset") / "d1"
    return build(out, members, excluded={"blank": f"preprocess failed: {blank.error}"})


def test_pipeline_shape() -> None:
    pipeline = build_pipeline()
    (stage,) = pipeline.stages

    assert (pipeline.model, pipeline.task, pipeline.output_area) == ("facesync", "dataset", "datasets")
    assert (stage.name, stage.version, stage.resources.gpus) == ("samples", "1", 0)
    assert [(spec.name, spec.relative, spec.optional) for spec in stage.inputs] == [
        ("track", "facesync/track.npz", False),
        ("validation", "facesync/validation.json", True),
    ]
    assert [out.relative for out in stage.outputs] == ["train/", "val/", "lm_mean.npy", "lm_std.npy", "manifest.json"]


def test_layout_counts_and_split_sizes(dataset: LocalRun) -> None:
    out = dataset.out
    train, val = samples_in(out, "train"), samples_in(out, "val")
    result = dataset.results["samples"]

    assert sorted(path.name for path in out.iterdir()) == ["lm_mean.npy", "lm_std.npy", "manifest.json", "train", "val"]
    assert len(train) + len(val) == 3 + 4  # every base window of astronaut and grace; none of mute's
    sizes = split_sizes(7, {"train": 0.9, "val": 0.1})
    assert (len(train), len(val)) == (sizes["train"], sizes["val"]) == (6, 1)
    expected = {f"astronaut_{start:06d}.npz" for start in (0, 25, 50)} | {
        f"grace_{start:06d}.npz" for start in (0, 25, 50, 75)
    }
    assert set(train) | set(val) == expected
    samples = [f"train/{name}" for name in train] + [f"val/{name}" for name in val]
    assert sorted(result.outputs) == sorted([*samples, "lm_mean.npy", "lm_std.npy", "manifest.json"])
    assert result.metrics["frames_in"] == 75 + 100 + 50
    assert (result.metrics["train_samples"], result.metrics["val_samples"]) == (6, 1)


def test_every_sample_has_the_promised_shapes_and_content(dataset: LocalRun, members: dict[str, Path]) -> None:
    tracks = {twin: load(folder / "facesync/track.npz") for twin, folder in members.items()}
    for path in sorted(dataset.out.glob("*/*.npz")):
        sample = load(path)
        twin, start = str(sample["twin"]), int(sample["start_frame"])
        track = tracks[twin]

        assert path.name == f"{twin}_{start:06d}.npz"
        assert set(sample) == {"landmarks", "audio", "centre", "scale", "twin", "start_frame", "fps", "sample_rate_hz"}
        assert sample["landmarks"].shape == (W, 68, 2) and sample["landmarks"].dtype == np.float32
        assert sample["audio"].shape == (W * 640,) and sample["audio"].dtype == np.float32
        assert sample["centre"].shape == (W, 2) and np.isfinite(sample["landmarks"]).all()
        assert (float(sample["fps"]), int(sample["sample_rate_hz"])) == (25.0, 16000)
        np.testing.assert_array_equal(sample["landmarks"], track["landmarks"][start : start + W])
        np.testing.assert_array_equal(sample["audio"], track["audio"][start * 640 : (start + W) * 640])
        assert float(sample["scale"]) == float(track["scale"])


def test_manifest_records_counts_and_both_kinds_of_exclusion(dataset: LocalRun, blank: FailedTwin) -> None:
    manifest = manifest_of(dataset.out)

    assert manifest["model"] == "facesync" and manifest["name"] == "d1"
    assert manifest["splits"] == {"train": 6, "val": 1} and manifest["files"] == {"train": 6, "val": 1}
    assert manifest["split_units"] == {"train": 6, "val": 1}
    assert (manifest["window_frames"], manifest["stride_frames"], manifest["samples_per_window"]) == (25, 25, 16000)
    assert set(manifest["twins"]) == {"astronaut", "grace"}
    grace = manifest["twins"]["grace"]
    assert grace["taken"]["windows"] == grace["taken"]["valid"] == 4 and grace["taken"]["discarded"] == {}
    assert grace["taken"]["audio_source"] == "audio/audio.wav"
    assert grace["taken"]["landmark_backend"] == "mediapipe"
    assert grace["taken"]["preprocess_validation"]["valid"] == 4
    assert grace["inputs"]["track"]["key"] == "processed/grace/preprocessed/facesync/facesync/track.npz"
    assert manifest["excluded"]["mute"] == (
        "none of its 2 windows of 25 frames is valid (silent: 2); see its facesync/validation.json"
    )
    assert manifest["excluded"]["blank"] == f"preprocess failed: {blank.error}"
    assert dataset.results["samples"].metrics["twins_excluded"] == 2


def test_statistics_come_from_the_train_samples_only(dataset: LocalRun) -> None:
    frames = train_landmarks(dataset.out)
    mean, std = np.load(dataset.out / "lm_mean.npy"), np.load(dataset.out / "lm_std.npy")

    assert frames.shape == (6 * W, 68, 2)
    assert mean.shape == std.shape == (68, 2) and mean.dtype == std.dtype == np.float32
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(std, np.maximum(frames.std(axis=0), STD_FLOOR), rtol=1e-6, atol=1e-7)
    with_val = np.concatenate([frames, np.concatenate([load(p)["landmarks"] for p in (dataset.out / "val").glob("*")])])
    assert not np.allclose(mean, with_val.mean(axis=0), rtol=1e-6, atol=1e-7)  # the val sample is not in them


def test_augment_factor_two_slides_the_window_and_keeps_base_windows_together(
    tmp_path: Path, members: dict[str, Path]
) -> None:
    run = build(tmp_path / "d2", members, augment_factor=2)
    out = run.out
    manifest = manifest_of(out)
    stride = W // 2

    assert manifest["stride_frames"] == stride
    per_twin = {"astronaut": len(range(0, 75 - W + 1, stride)), "grace": len(range(0, 100 - W + 1, stride))}
    assert per_twin == {"astronaut": 5, "grace": 7}  # 12 windows for 7 at factor 1: about twice, as the stride says
    assert {twin: manifest["twins"][twin]["taken"]["valid"] for twin in per_twin} == per_twin
    assert manifest["excluded"]["mute"].startswith("none of its 3 windows")
    splits_of_units: dict[tuple[str, int], set[str]] = {}
    for split in ("train", "val"):
        for name in samples_in(out, split):
            twin, start = name[:-4].rsplit("_", 1)
            splits_of_units.setdefault((twin, (int(start) + (W - 1) // 2) // W), set()).add(split)
    assert len(splits_of_units) == 7 and all(len(splits) == 1 for splits in splits_of_units.values())
    units = split_sizes(7, {"train": 0.9, "val": 0.1})
    assert manifest["split_units"] == units
    assert sum(1 for splits in splits_of_units.values() if splits == {"val"}) == units["val"]


def test_same_seed_same_bytes_other_seed_other_split(
    tmp_path: Path, members: dict[str, Path], dataset: LocalRun
) -> None:
    blank_reason = manifest_of(dataset.out)["excluded"]["blank"]
    again = build(tmp_path / "d1", members, excluded={"blank": blank_reason})
    assert samples_in(again.out, "val") == samples_in(dataset.out, "val")
    assert digest(again.out) == digest(dataset.out)

    other = build(tmp_path / "seed1", members, seed=1)
    assert len(samples_in(other.out, "val")) == 1
    assert samples_in(other.out, "val") != samples_in(dataset.out, "val")

    rebuilt = build(again.out, members, seed=1)  # into the same folder: nothing of the previous build is left
    assert samples_in(rebuilt.out, "val") == samples_in(other.out, "val")
    assert len(list(again.out.glob("*/*.npz"))) == 7


def test_adding_a_twin_recomputes_the_statistics(tmp_path: Path, astronaut: Twin, grace: Twin) -> None:
    alone = build(tmp_path / "alone", {"astronaut": astronaut.out})
    extended = build(tmp_path / "extended", {"astronaut": astronaut.out, "grace": grace.out})
    mean_alone, mean_extended = np.load(alone.out / "lm_mean.npy"), np.load(extended.out / "lm_mean.npy")

    assert samples_in(alone.out, "train") and len(samples_in(extended.out, "train")) == 6
    np.testing.assert_allclose(mean_alone, train_landmarks(alone.out).mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(mean_extended, train_landmarks(extended.out).mean(axis=0), rtol=1e-6, atol=1e-7)
    assert np.abs(mean_extended - mean_alone).max() > 1e-3


def test_twins_that_give_nothing_are_excluded_with_the_reason(tmp_path: Path, astronaut: Twin, grace: Twin) -> None:
    twins = {"astronaut": astronaut.out, "grace": grace.out, "ghost": tmp_path}
    run = build(tmp_path / "long", twins, window_frames=100)
    manifest = manifest_of(run.out)

    assert set(manifest["twins"]) == {"grace"} and samples_in(run.out, "train") == ["grace_000000.npz"]
    assert manifest["excluded"]["astronaut"].startswith("its track has 75 frames (3.00 s), fewer than one window")
    assert manifest["excluded"]["ghost"].startswith("no facesync/track.npz in its facesync preprocess")
    assert load(run.out / "train/grace_000000.npz")["audio"].shape == (100 * 640,)


def test_no_usable_twin_fails_naming_each_twin(tmp_path: Path, mute: Twin, blank: FailedTwin) -> None:
    with pytest.raises(BadInput, match="no usable twin for facesync dataset 'none'") as caught:
        build(tmp_path / "none", {"mute": mute.out}, excluded={"blank": "preprocess failed: no face"})

    assert "blank: preprocess failed: no face" in str(caught.value)
    assert "mute: none of its 2 windows of 25 frames is valid (silent: 2)" in str(caught.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"augment_factor": 0}, "augment_factor=0 must be a whole number"),
        ({"augment_factor": 26}, "augment_factor=26 must be a whole number of windows per base window from 1 to 25"),
        ({"train_percent": 90}, "train_percent=90 must be a fraction"),
        ({"seed": "a"}, "seed='a' must be a whole number"),
        ({"fps": 30}, "not a whole number"),
    ],
)
def test_bad_parameters_are_refused(tmp_path: Path, astronaut: Twin, params: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        build(tmp_path / "bad", {"astronaut": astronaut.out}, **params)
