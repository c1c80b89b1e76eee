"""A tiny real dataset model ("kitds") for testing dataset jobs without media: fast and fully controllable.

preprocess (per twin): `measure` reads the twin's raw audio file and writes `measure/size.json` with its size;
an upload starting with b"BAD" is refused (BadInput), as a corrupt video would be.
dataset: `assemble` reads every member's `measure/size.json`, writes `items/{twin}.json` for each member whose
upload is at least `min_bytes` long (the others are excluded with that reason), and the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipelines.base import (
    BadInput,
    InputSpec,
    OutputSpec,
    Pipeline,
    Resources,
    Source,
    StageContext,
    StageResult,
)
from pipelines.dataset_kit.manifest import excluded_by_platform, write_manifest, written_files
from pipelines.dataset_kit.splits import assign_splits
from pipelines.registry import register_pipeline

SIZE = "measure/size.json"


class MeasureStage:
    name = "measure"
    version = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("audio", Source.RAW, kind="audio"),)
    outputs: tuple[OutputSpec, ...] = (OutputSpec(SIZE),)
    resources = Resources()

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None if "audio" in available_inputs else "no raw audio was ingested"

    def run(self, context: StageContext) -> StageResult:
        data = context.inputs["audio"].read_bytes()
        if data.startswith(b"BAD"):
            raise BadInput(f"{context.inputs['audio'].name} is corrupt: upload it again")
        context.output_path(SIZE).write_text(json.dumps({"bytes": len(data)}))
        return StageResult(outputs=[SIZE], metrics={"bytes": len(data)})


class AssembleStage:
    name = "assemble"
    version = "1"
    inputs: tuple[InputSpec, ...] = (InputSpec("size", Source.MEMBER, relative=SIZE),)
    outputs: tuple[OutputSpec, ...] = (OutputSpec("items/"), OutputSpec("splits.json"), OutputSpec("manifest.json"))
    resources = Resources()

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None

    def run(self, context: StageContext) -> StageResult:
        min_bytes = int(context.params.get("min_bytes", 0))
        excluded = excluded_by_platform(context.params)
        included: dict[str, dict[str, Any]] = {}
        for twin, files in context.members().items():
            if "size" not in files:
                excluded[twin] = f"its preprocess left no {SIZE}"
                continue
            size = json.loads(files["size"].read_text())["bytes"]
            if size < min_bytes:
                excluded[twin] = f"its upload has {size} bytes, fewer than min_bytes={min_bytes}"
                continue
            context.output_path(f"items/{twin}.json").write_text(json.dumps({"twin": twin, "bytes": size}))
            included[twin] = {"bytes": size}
        if not included:
            reasons = "; ".join(f"{twin}: {why}" for twin, why in excluded.items())
            raise BadInput(f"no usable twin for dataset {context.params.get('dataset')!r}: {reasons}")
        splits = assign_splits(sorted(included), {"train": 0.5, "val": 0.5}, int(context.params.get("seed", 0)))
        context.output_path("splits.json").write_text(json.dumps(splits, sort_keys=True))
        manifest = write_manifest(
            context,
            model="kitds",
            included=included,
            excluded=excluded,
            splits={name: len(items) for name, items in splits.items()},
            files={"items": len(included)},
        )
        outputs = [*written_files(context.output_dir, "items/"), "splits.json", manifest]
        return StageResult(outputs=outputs, metrics={"twins": len(included), "excluded": len(excluded)})


def build_preprocess() -> Pipeline:
    return Pipeline("kitds", "preprocess", "processed", (MeasureStage(),))


def build_dataset() -> Pipeline:
    return Pipeline("kitds", "dataset", "datasets", (AssembleStage(),))


def register() -> None:
    register_pipeline("kitds", "preprocess", "tests.support.kit_datasets:build_preprocess")
    register_pipeline("kitds", "dataset", "tests.support.kit_datasets:build_dataset")
