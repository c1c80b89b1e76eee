"""perceptalign dataset from generated twins (2 s chunks): the seed's layout, chunk media, flow images, splits,
exclusions and determinism, as a user of the dataset would check them."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.base import BadInput
from pipelines.media.probe import probe
from pipelines.perceptalign import outputs as files
from tests.pipelines.perceptalign.conftest import CHUNK_FRAMES, CHUNK_SAMPLES, DATASET, Twin
from tests.support.local_pipelines import LocalRun, run_pipeline

PARAMS = {"dataset": "talk", "duration_s": 2}


@pytest.fixture(scope="module")
def built(moving_twin: Twin, still_twin: Twin, short_twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """alice moves (2 chunks), bob is still (1 chunk), carl is too short (excluded); dora's preprocess failed."""
    members = {"alice": moving_twin.out, "bob": still_twin.out, "carl": short_twin.out}
    params = {**PARAMS, "excluded": {"dora": "preprocess failed: no sound"}}
    return run_pipeline(DATASET, tmp_path_factory.mktemp("dataset"), members=members, params=params)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_layout_follows_the_seeds_final_structure(built: LocalRun) -> None:
    root = built.out
    chunks = {"alice": ["alice_chunk_000", "alice_chunk_001"], "bob": ["bob_chunk_000"]}

    for cls, ids in chunks.items():
        assert sorted(p.name for p in (root / f"features/{cls}/melspec_2s_22050hz").iterdir()) == [
            f"{i}_mel.npy" for i in ids
        ]
        assert sorted(p.name for p in (root / f"videos/{cls}/videos_2s_21.5fps").iterdir()) == [f"{i}.mp4" for i in ids]
        assert sorted(p.name for p in (root / f"audio/{cls}/audio_2s_22050hz").iterdir()) == [f"{i}.wav" for i in ids]
        for item in ids:
            frames = sorted(p.name for p in (root / f"frames/{cls}/{item}").iterdir())
            flows = sorted(p.name for p in (root / f"flow/{cls}/{item}").iterdir())
            assert frames == [f"img_{n:05d}.jpg" for n in range(1, CHUNK_FRAMES + 1)]
            assert flows == sorted(f"flow_{a}_{n:05d}.jpg" for a in "xy" for n in range(1, CHUNK_FRAMES))
    assert not (root / "features/carl").exists() and not (root / "frames/carl").exists()
    split_files = sorted(p.name for p in (root / "splits").iterdir())
    assert split_files == [f"talk_{s}.txt" for s in ("all", "test", "train", "valid")]
    result = built.results["dataset"]
    assert sorted(result.outputs) == sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
    )
    assert result.metrics["chunks"] == 3 and result.metrics["frames_in"] == 3 * CHUNK_FRAMES


def test_every_chunk_video_is_43_frames_at_21_5_fps_with_its_2_s_of_22050_hz_audio(built: LocalRun) -> None:
    for video in sorted(built.out.glob("videos/*/videos_2s_21.5fps/*.mp4")):
        info = probe(video)
        assert info.video is not None and info.audio is not None, video.name
        video_stream = (info.video.frames, info.video.fps, info.video.width, info.video.height)
        assert video_stream == (CHUNK_FRAMES, 21.5, 256, 256)
        assert (info.audio.sample_rate_hz, info.audio.channels) == (22050, 1)
        assert info.audio.duration_s == pytest.approx(2.0, abs=1e-3)


def test_chunk_audio_and_mel_are_the_preprocessed_ones(built: LocalRun, moving_twin: Twin) -> None:
    with wave.open(str(moving_twin.out / files.AUDIO_WAV)) as handle:
        whole = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    with np.load(moving_twin.out / files.CHUNKS_NPZ) as bundle:
        mels = bundle["mel"]

    for index in range(2):
        with wave.open(str(built.out / f"audio/alice/audio_2s_22050hz/alice_chunk_{index:03d}.wav")) as handle:
            assert (handle.getframerate(), handle.getnframes()) == (22050, CHUNK_SAMPLES)
            chunk = np.frombuffer(handle.readframes(CHUNK_SAMPLES), "<i2")
        assert np.array_equal(chunk, whole[index * CHUNK_SAMPLES : (index + 1) * CHUNK_SAMPLES])
        mel = np.load(built.out / f"features/alice/melspec_2s_22050hz/alice_chunk_{index:03d}_mel.npy")
        assert mel.shape == (80, 171) and mel.dtype == np.float32 and np.array_equal(mel, mels[index])


def test_flow_images_decode_and_show_motion_only_where_there_is_some(built: LocalRun) -> None:
    def flow_images(cls: str, item: str) -> np.ndarray:
        paths = sorted((built.out / f"flow/{cls}/{item}").glob("flow_*.jpg"))
        return np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]).astype(np.float64)

    moving, still = flow_images("alice", "alice_chunk_000"), flow_images("bob", "bob_chunk_000")
    frame = cv2.imread(str(built.out / "frames/alice/alice_chunk_000/img_00001.jpg"))

    assert moving.shape == still.shape == (2 * (CHUNK_FRAMES - 1), 256, 256)
    assert frame.shape == (256, 256, 3)
    assert np.abs(still - 127.5).mean() < 0.7  # "no motion" is 128 (JPEG keeps a flat grey exact)
    assert np.abs(moving - 127.5).mean() > 2.0 and moving.std() > 2.0


def test_splits_are_exact_and_the_all_list_is_their_union(built: LocalRun) -> None:
    splits = {s: lines(built.out / f"splits/talk_{s}.txt") for s in ("train", "valid", "test", "all")}

    # 3 chunks: train round(0.8 * 3) = 2, valid round(0.1 * 3) = 0, test the rest
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [2, 0, 1]
    assert sorted(splits["train"] + splits["valid"] + splits["test"]) == splits["all"]
    assert splits["all"] == ["alice/alice_chunk_000", "alice/alice_chunk_001", "bob/bob_chunk_000"]


def test_manifest_names_the_excluded_twins_and_why(built: LocalRun) -> None:
    manifest = json.loads((built.out / "manifest.json").read_text())

    assert sorted(manifest["twins"]) == ["alice", "bob"]
    assert manifest["twins"]["alice"]["taken"]["chunks"] == 2
    assert manifest["twins"]["alice"]["inputs"]["chunks"]["key"].endswith("perceptalign/chunks/chunks.npz")
    assert "shorter than one 2 s chunk" in manifest["excluded"]["carl"]
    assert manifest["excluded"]["dora"] == "preprocess failed: no sound"
    assert manifest["splits"] == {"train": 2, "valid": 0, "test": 1}
    assert manifest["files"]["flow"] == 3 * 2 * (CHUNK_FRAMES - 1)
    assert built.results["dataset"].metrics["excluded"] == manifest["excluded"]


def test_splits_are_exact_and_reproducible_for_other_fractions_and_by_twin(
    still_twin: Twin, moving_twin: Twin, tmp_path: Path
) -> None:
    """Five one-chunk twins (sharing one preprocess) cut 0.6/0.2/rest = 3/1/1; the same seed, the same split."""
    members = {name: still_twin.out for name in ("t1", "t2", "t3", "t4", "t5")}
    fractions = {"train_percent": 0.6, "valid_percent": 0.2}

    def build(folder: str, members: dict[str, Path], **extra: object) -> dict[str, list[str]]:
        out = run_pipeline(DATASET, tmp_path / folder, members=members, params={**PARAMS, **fractions, **extra}).out
        return {s: lines(out / f"splits/talk_{s}.txt") for s in ("train", "valid", "test", "all")}

    first, again, other = build("a", members, seed=7), build("b", members, seed=7), build("c", members, seed=8)
    by_twin = build("d", {n: moving_twin.out for n in ("m1", "m2", "m3")}, split_by="twin", class_name="speech")

    assert [len(first[s]) for s in ("train", "valid", "test")] == [3, 1, 1]
    assert first == again
    assert [len(other[s]) for s in ("train", "valid", "test")] == [3, 1, 1] and other != first
    for same in ("frames/t1/t1_chunk_000/img_00001.jpg", "videos/t3/videos_2s_21.5fps/t3_chunk_000.mp4",
                 "flow/t5/t5_chunk_000/flow_y_00042.jpg", "features/t2/melspec_2s_22050hz/t2_chunk_000_mel.npy"):
        assert (tmp_path / "a" / same).read_bytes() == (tmp_path / "b" / same).read_bytes(), same
    # by twin: 3 twins -> round(1.8) = 2 train, round(0.6) = 1 valid, 0 test; a twin's 2 chunks stay together
    assert [len(by_twin[s]) for s in ("train", "valid", "test")] == [4, 2, 0]
    assert {item.split("/")[0] for item in by_twin["all"]} == {"speech"}
    assert len({item.split("/")[1].split("_chunk")[0] for item in by_twin["valid"]}) == 1


def test_twins_preprocessed_with_other_settings_or_missing_files_are_excluded(
    moving_twin: Twin, tmp_path: Path
) -> None:
    empty = tmp_path / "never_preprocessed"
    empty.mkdir()
    members = {"alice": moving_twin.out, "ghost": empty}

    with pytest.raises(BadInput) as refused:
        run_pipeline(DATASET, tmp_path / "ten", members=members, params={"dataset": "talk"})  # 10 s chunks
    message = str(refused.value)
    assert "no usable twin for dataset 'talk'" in message
    assert "alice: its preprocess used duration_s=2.0 (this dataset asks for 10.0)" in message
    assert "ghost: its perceptalign preprocess has no video/video.mp4" in message
    assert not any(p.is_file() for p in (tmp_path / "ten").rglob("*"))
