"""`platform dataset build` for each dataset model, end to end on the embedded default, from real twins.

Four twins: two real talking clips from ../shared/media (generated face clips where that folder is absent), a
faceless test pattern and a truncated upload. Each model's build must take the two real twins, exclude the broken
one (and, for the face models, the faceless one) with its reason, and write the seed's layout under
datasets/{model}/{name}/ with a manifest naming exactly the member files that went in. The models' own tests
check their formats in depth (tests/pipelines/{model}/); this checks them through the product.
"""

from __future__ import annotations

import hashlib
import json
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.media.ffmpeg_tool import find_ffmpeg
from pipelines.media.probe import probe
from pipelines.media.synthetic import face_photo, make_face_video, make_video
from tests.support.cli_harness import Platform

pytestmark = pytest.mark.slow

SHARED_MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"


@dataclass(frozen=True)
class Uploads:
    twins: dict[str, list[Path]]
    real: bool


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Uploads:
    import subprocess

    folder = tmp_path_factory.mktemp("uploads")
    blank = make_video(folder / "blank.mp4", seconds=2.4, fps=25)
    broken = folder / "broken.mp4"
    broken.write_bytes(blank.read_bytes()[:4000])  # a truncated upload: no decodable frame
    if (SHARED_MEDIA / "talking_512.mp4").is_file():
        sun_video, sun_audio = folder / "sun6.mp4", folder / "sun6.wav"
        exe = find_ffmpeg()
        for source, target in ((SHARED_MEDIA / "sun.mp4", sun_video), (SHARED_MEDIA / "sun.wav", sun_audio)):
            subprocess.run([exe, "-v", "error", "-i", str(source), "-t", "6", str(target)], check=True)
        talk = [SHARED_MEDIA / "talking_512.mp4"]
        sun = [sun_video, sun_audio]
        real = True
    else:
        talk = [make_face_video(folder / "talk.mp4", seconds=4, fps=25)]
        sun = [make_face_video(folder / "sun.mp4", photo=face_photo("grace_hopper"), seconds=3, fps=25)]
        real = False
    return Uploads({"talk": talk, "sun": sun, "blank": [blank], "broken": [broken]}, real)


@pytest.fixture
def members(platform_cli: Platform, uploads: Uploads) -> Platform:
    for twin, files in uploads.twins.items():
        platform_cli("twin", "ingest", twin, "--create", *map(str, files))
    return platform_cli


def build(platform: Platform, model: str, *extra: str) -> tuple[dict, str]:
    result = platform("dataset", "build", "--model", model, "--name", "v1", "--twins", "talk,sun,blank,broken", *extra)
    manifest = json.loads((platform.store / f"datasets/{model}/v1/manifest.json").read_text())
    return manifest, result.output


def check_manifest(platform: Platform, manifest: dict, taken: set[str], excluded: dict[str, str]) -> None:
    assert set(manifest["twins"]) == taken
    assert set(manifest["excluded"]) == set(excluded)
    for twin, pattern in excluded.items():
        assert re.search(pattern, manifest["excluded"][twin]), manifest["excluded"][twin]
    for twin in taken:
        for source in manifest["twins"][twin]["inputs"].values():
            assert source["key"].startswith(f"processed/{twin}/preprocessed/")
            stored = platform.store / source["key"]
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == source["checksum"]


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


BROKEN = r"preprocess stage video failed: .*broken\.mp4"
FACELESS = r"preprocess stage landmarks failed: .*face"


def test_facesync(members: Platform) -> None:
    manifest, output = build(members, "facesync", "--param", "augment_factor=2")
    assert "twin broken: excluded" in output and "twin blank: excluded" in output
    check_manifest(members, manifest, {"talk", "sun"}, {"broken": BROKEN, "blank": FACELESS})
    root = members.store / "datasets/facesync/v1"
    train, val = files_under(root / "train"), files_under(root / "val")
    assert len(train) == manifest["splits"]["train"] and len(val) == manifest["splits"]["val"]
    units = manifest["split_units"]  # base windows, each with its shifted copies, are what is split
    assert units["train"] == round(0.9 * (units["train"] + units["val"]))
    assert len(train) + len(val) > 1.5 * (units["train"] + units["val"])  # augment_factor=2: ~2 windows a unit
    with np.load(train[0]) as sample:
        assert sample["landmarks"].shape == (25, 68, 2) and sample["audio"].shape == (25 * 640,)
    mean, std = np.load(root / "lm_mean.npy"), np.load(root / "lm_std.npy")
    stacked = np.concatenate([np.load(path)["landmarks"] for path in train])
    assert np.allclose(mean, stacked.mean(axis=0), atol=1e-5) and (std > 0).all()


def test_bilayer(members: Platform) -> None:
    manifest, _ = build(members, "bilayer", "--param", "test_percent=0.5", "--preprocess-param", "sampling_rate=10")
    check_manifest(members, manifest, {"talk", "sun"}, {"broken": BROKEN, "blank": FACELESS})
    root = members.store / "datasets/bilayer/v1"
    stems = {
        kind: {p.relative_to(root / kind).with_suffix("") for p in files_under(root / kind)}
        for kind in ("imgs", "keypoints", "segs")
    }
    assert stems["imgs"] == stems["keypoints"] == stems["segs"] and stems["imgs"]
    persons = {(stem.parts[0], stem.parts[1]) for stem in stems["imgs"]}  # (phase, PERSON_ID)
    assert sorted(person for _, person in persons) == ["sun", "talk"]  # each person in exactly one phase
    assert {phase for phase, _ in persons} == {"train", "test"}
    first = sorted(stems["imgs"])[0]
    assert len(first.parts) == 5  # phase / PERSON_ID / VIDEO_ID / SEQUENCE_ID / FRAME
    with Image.open(root / "imgs" / first.with_suffix(".jpg")) as image:
        assert image.size == (256, 256) and image.mode == "RGB"
    points = np.load(root / "keypoints" / first.with_suffix(".npy"))
    assert points.shape == (68, 2) and points.dtype == np.float32
    with Image.open(root / "segs" / first.with_suffix(".png")) as mask:
        assert mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}


def test_perceptalign(members: Platform, uploads: Uploads) -> None:
    # 2 s chunks keep the test fast; the seed's 10 s chunks are tested on sun.mp4 in tests/pipelines/perceptalign
    manifest, output = build(members, "perceptalign", "--preprocess-param", "duration_s=2")
    # no face is needed to learn sound from video: the test pattern is a valid member; the truncated upload is not
    check_manifest(members, manifest, {"talk", "sun", "blank"}, {"broken": BROKEN})
    root = members.store / "datasets/perceptalign/v1"
    chunks = {twin: len(files_under(root / f"features/{twin}/melspec_2s_22050hz")) for twin in manifest["twins"]}
    # whole 2 s chunks of 8 s, 6 s and 2.4 s clips (generated stand-ins: 4 s and 3 s); a shorter tail is no chunk
    assert chunks == ({"talk": 4, "sun": 3, "blank": 1} if uploads.real else {"talk": 2, "sun": 1, "blank": 1})
    videos = files_under(root / "videos")
    assert len(videos) == sum(chunks.values())
    info = probe(videos[0])
    assert info.video is not None and info.video.fps == 21.5 and info.video.frames == 43
    assert info.audio is not None and info.audio.sample_rate_hz == 22050
    lists = {name: (root / f"splits/v1_{name}.txt").read_text().split() for name in ("train", "valid", "test", "all")}
    assert sorted(lists["train"] + lists["valid"] + lists["test"]) == sorted(lists["all"])
    assert len(lists["all"]) == sum(chunks.values()) and len(lists["train"]) == round(0.8 * len(lists["all"]))
    first = lists["all"][0]
    assert len(files_under(root / "frames" / first)) == 43 and len(files_under(root / "flow" / first)) == 2 * 42


def test_lawdnet(members: Platform) -> None:
    manifest, _ = build(members, "lawdnet")
    check_manifest(members, manifest, {"talk", "sun"}, {"broken": BROKEN, "blank": FACELESS})
    root = members.store / "datasets/lawdnet/v1"
    for twin in ("talk", "sun"):
        frames = files_under(root / f"split_video_25fps_frame/{twin}")
        crops = files_under(root / f"split_video_25fps_crop_face/{twin}")
        rows = (root / f"split_video_25fps_landmark_openface/{twin}.csv").read_text().strip().splitlines()[1:]
        features = np.loadtxt(root / f"split_video_25fps_deepspeech/{twin}_deepspeech.txt", ndmin=2)
        with wave.open(str(root / f"split_video_25fps_audio/{twin}.wav")) as audio:
            samples, rate = audio.getnframes(), audio.getframerate()
        # the seed's bug ("the audio features have 3 more frames than the video") cannot happen: one count
        assert len(frames) == len(crops) == len(rows) == features.shape[0] > 0
        assert rate == 16000 and samples == 640 * len(frames)
        with Image.open(crops[0]) as crop:
            assert crop.size == (320, 416)  # 416 high, 320 wide
    clips = json.loads((root / "training_json.json").read_text())
    assert set(clips) == {"talk", "sun"}
    for clip in clips["talk"]["clip_data_list"]:
        assert len(clip["frame_path_list"]) == len(clip["deep_speech_list"]) == 9
        assert all((root / path).is_file() for path in clip["frame_path_list"])
