"""bilayer dataset: the member twins' samples as the VoxCeleb2-style tree the bi-layer training code reads.

    imgs/{phase}/{twin}/{VIDEO_ID}/{SEQ:05d}/{i}.jpg       the crop, RGB JPEG
    keypoints/{phase}/{twin}/{VIDEO_ID}/{SEQ:05d}/{i}.npy  (68, 2) float32 keypoints in the JPEG's pixels
    segs/{phase}/{twin}/{VIDEO_ID}/{SEQ:05d}/{i}.png       8-bit greyscale person mask, 0 or 255
    manifest.json

Whole persons (twins) go to a phase: `phase` puts every twin in it (as the seed's extract.sh does); otherwise
`assign_splits` sends round(test_percent * persons) of them to test, reproducibly for a `seed`. A twin without a
usable samples file, with no kept frame, or cropped at another `image_size` is excluded and the manifest says why.

Parameters (all optional): `test_percent` (0.2; a fraction of the persons, 0..1), `seed` (0), `phase` ("train" or
"test"; not together with test_percent), `sequence_length` (100), `jpeg_quality` (95), `image_size` (256).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.base import BadInput, InputSpec, OutputSpec, Pipeline, Resources, Source, StageContext, StageResult
from pipelines.bilayer import outputs as names
from pipelines.bilayer.layout import frame_stem, split_sequences
from pipelines.bilayer.preprocess import MODEL
from pipelines.bilayer.samples_file import Samples, load_samples
from pipelines.dataset_kit.manifest import MANIFEST, excluded_by_platform, write_manifest, written_files
from pipelines.dataset_kit.params import choice, fraction, whole_number
from pipelines.dataset_kit.splits import assign_splits

DEFAULT_TEST_PERCENT = 0.2
DEFAULT_SEQUENCE_LENGTH = 100
DEFAULT_JPEG_QUALITY = 95
DEFAULT_IMAGE_SIZE = 256
# Twins are written here first and moved to their phase once every twin is known (the split needs them all);
# twin ids start with a letter or digit, so no twin is called this.
_STAGING = ".staging"


@dataclass(frozen=True)
class Settings:
    phase: str | None
    test_percent: float
    seed: int
    sequence_length: int
    jpeg_quality: int
    image_size: int


@dataclass(frozen=True)
class Written:
    """What one twin contributed."""

    video_id: str
    frames: int
    sequences: int
    sampled: int
    sampling_rate: int
    fps: float


class BilayerDatasetStage:
    name = "dataset"
    version = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("samples", Source.MEMBER, relative=names.SAMPLES_NPZ),)
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(names.IMGS),
        OutputSpec(names.KEYPOINTS),
        OutputSpec(names.SEGS),
        OutputSpec(MANIFEST),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None  # NOTE: with no usable member, run() fails naming every twin and why

    def run(self, context: StageContext) -> StageResult:
        settings = _settings(context.params)
        out = context.output_dir
        for tree in names.TREES:
            if (out / tree).exists():
                shutil.rmtree(out / tree)  # never mix a previous run's frames into this dataset
        excluded = excluded_by_platform(context.params)
        written: dict[str, Written] = {}
        members = context.members()
        for number, (twin, member_inputs) in enumerate(members.items()):
            context.progress(0.95 * number / max(1, len(members)), f"writing {twin}")
            context.check_cancelled()
            samples, reason = _usable_samples(twin, member_inputs.get("samples"), settings)
            if samples is None:
                excluded[twin] = reason
                continue
            written[twin] = _write_twin(context, twin, samples, settings)
        if not written:
            why = "; ".join(f"{twin}: {reason}" for twin, reason in excluded.items()) or "no member twin was given"
            raise BadInput(f"no usable twin for bilayer dataset {context.params.get('dataset', '')!r}: {why}")

        phases = _phases(list(written), settings)
        for twin, phase in phases.items():
            for tree in names.TREES:
                target = out / tree / phase / twin
                target.parent.mkdir(parents=True, exist_ok=True)
                (out / tree / _STAGING / twin).rename(target)
        for tree in names.TREES:
            (out / tree / _STAGING).rmdir()

        files = {tree.rstrip("/"): len(written_files(out, tree)) for tree in names.TREES}
        persons = {phase: sum(1 for p in phases.values() if p == phase) for phase in names.PHASES}
        frames = {phase: sum(written[t].frames for t, p in phases.items() if p == phase) for phase in names.PHASES}
        included = {
            twin: {
                "phase": phases[twin],
                "video_id": item.video_id,
                "frames": item.frames,
                "sequences": item.sequences,
                "sampled": item.sampled,
                "sampling_rate": item.sampling_rate,
                "fps": item.fps,
            }
            for twin, item in written.items()
        }
        manifest = write_manifest(
            context,
            model=MODEL,
            included=included,
            excluded=excluded,
            splits=persons,
            files=files,
            extra={"frames_per_split": frames, "image_size": settings.image_size, "split_unit": "person (twin)"},
        )
        outputs = [name for tree in names.TREES for name in written_files(out, tree)] + [manifest]
        context.progress(1.0, "dataset written")
        left_out = f"; excluded {len(excluded)}: {', '.join(sorted(excluded))}" if excluded else ""
        return StageResult(
            outputs=outputs,
            metrics={
                "persons": persons,
                "frames": frames,
                "files": files,
                "excluded": len(excluded),
                "samples_in": sum(item.frames for item in written.values()),
            },
            message=(
                f"{persons['train']} train and {persons['test']} test persons, {frames['train']} + {frames['test']} "
                f"frames{left_out}"
            ),
        )


def build_pipeline() -> Pipeline:
    return Pipeline(model=MODEL, task="dataset", output_area="datasets", stages=(BilayerDatasetStage(),))


def _settings(params: Mapping[str, Any]) -> Settings:
    phase = choice(params, "phase", names.PHASES)
    if phase is not None and "test_percent" in params:
        raise BadInput(
            f"parameters phase={phase!r} and test_percent={params['test_percent']!r} contradict each other: phase puts "
            "every twin in one phase, test_percent splits them; give one of them"
        )
    return Settings(
        phase=phase,
        test_percent=fraction(params, "test_percent", DEFAULT_TEST_PERCENT),
        seed=whole_number(params, "seed", 0, 0, 2**31 - 1),
        sequence_length=whole_number(params, "sequence_length", DEFAULT_SEQUENCE_LENGTH, 1, 1_000_000),
        jpeg_quality=whole_number(params, "jpeg_quality", DEFAULT_JPEG_QUALITY, 1, 100),
        image_size=whole_number(params, "image_size", DEFAULT_IMAGE_SIZE, 64, 1024),
    )


def _usable_samples(twin: str, path: Path | None, settings: Settings) -> tuple[Samples | None, str]:
    """The twin's samples, or None and the reason it is excluded (what is wrong and what to do)."""
    if path is None:
        return None, (
            f"its bilayer preprocess wrote no {names.SAMPLES_NPZ} (the twin has no video, or the preprocess has not "
            "run): run the bilayer preprocess for it"
        )
    try:
        samples = load_samples(path, f"{twin}'s {names.SAMPLES_NPZ}")
    except BadInput as error:
        return None, str(error)
    if samples.image_size != settings.image_size:
        return None, (
            f"its frames were cropped at {samples.image_size}x{samples.image_size}, the dataset is "
            f"{settings.image_size}x{settings.image_size}: run its bilayer preprocess with "
            f"image_size={settings.image_size}, or build the dataset with image_size={samples.image_size}"
        )
    if samples.count == 0:
        why = ", ".join(f"{reason} {count}" for reason, count in samples.rejected().items())
        return None, (
            f"none of its {samples.sampled_index.size} sampled frames (every {samples.sampling_rate} of "
            f"{samples.frames}) has a usable face ({why or 'no frame sampled'}): upload a video in which the face "
            "is in view, or sample more frames (a smaller sampling_rate)"
        )
    return samples, ""


def _write_twin(context: StageContext, twin: str, samples: Samples, settings: Settings) -> Written:
    """Write the twin's frames under the staging phase; they move to their phase once the split is known."""
    out = context.output_dir
    sequences = split_sequences(samples.frame_index, samples.sampling_rate, settings.sequence_length)
    for sequence_number, positions in enumerate(sequences, start=1):
        folder = frame_stem(_STAGING, twin, samples.video_id, sequence_number, 0).rpartition("/")[0]
        for tree in names.TREES:
            (out / tree / folder).mkdir(parents=True, exist_ok=True)
        for frame_number, position in enumerate(positions):
            stem = frame_stem(_STAGING, twin, samples.video_id, sequence_number, frame_number)
            (out / names.IMGS / f"{stem}.jpg").write_bytes(_jpeg(samples.imgs[position], settings.jpeg_quality))
            with (out / names.KEYPOINTS / f"{stem}.npy").open("wb") as handle:
                np.save(handle, np.ascontiguousarray(samples.keypoints[position]), allow_pickle=False)
            (out / names.SEGS / f"{stem}.png").write_bytes(_png(samples.segs[position]))
        context.check_cancelled()
    return Written(
        video_id=samples.video_id,
        frames=samples.count,
        sequences=len(sequences),
        sampled=int(samples.sampled_index.size),
        sampling_rate=samples.sampling_rate,
        fps=samples.fps,
    )


def _phases(twins: list[str], settings: Settings) -> dict[str, str]:
    """{twin: phase}: everyone in `settings.phase`, or whole persons split by `assign_splits`."""
    if settings.phase is not None:
        return {twin: settings.phase for twin in twins}
    split = assign_splits(twins, {"test": settings.test_percent, "train": 1.0 - settings.test_percent}, settings.seed)
    return {twin: phase for phase, members in split.items() for twin in members}


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes, 4:4:4 (no chroma subsampling: lips and eyes keep their colour edges), no metadata."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def _png(mask: np.ndarray) -> bytes:
    """8-bit greyscale PNG bytes, no metadata (the same mask gives the same bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
