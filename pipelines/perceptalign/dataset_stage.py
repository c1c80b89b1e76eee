"""The perceptalign `dataset` stage: member twins' chunks -> the seed's training layout, split lists, manifest.

For each member twin (in the job's order) it checks the preprocess outputs are there and were made with this
dataset's chunk settings, then writes every chunk (see `chunk_writer`). A twin is EXCLUDED, with its reason in
the manifest and the metrics, when its preprocess outputs are missing, were made with other settings, are
inconsistent, or hold no chunk (a recording shorter than one chunk). No usable twin at all is BadInput.

Splits: `assign_splits` over the chunk items (`split_by` "chunk", the seed's way) or over the twins
(`split_by` "twin"); train gets round(train_percent * n), valid round(valid_percent * n), test the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.dataset_kit.manifest import MANIFEST, excluded_by_platform, write_manifest, written_files
from pipelines.dataset_kit.splits import assign_splits
from pipelines.media.wav import read_pcm16
from pipelines.perceptalign import outputs as files
from pipelines.perceptalign.bundle import open_bundle
from pipelines.perceptalign.chunk_writer import TwinWriter
from pipelines.perceptalign.dataset_params import DatasetParams
from pipelines.perceptalign.layout import FOLDERS, SPLITS, DatasetLayout
from pipelines.perceptalign.settings import ChunkSettings

MODEL = "perceptalign"
# member input name -> the preprocess output it is
MEMBER_FILES = {
    "video": files.VIDEO_MP4,
    "audio": files.AUDIO_WAV,
    "chunks": files.CHUNKS_NPZ,
    "summary": files.CHUNKS_JSON,
}


class DatasetStage:
    name = "dataset"
    version = "1"
    inputs: tuple[InputSpec, ...] = tuple(
        InputSpec(name, Source.MEMBER, relative=relative) for name, relative in MEMBER_FILES.items()
    )
    outputs: tuple[OutputSpec, ...] = (*(OutputSpec(folder) for folder in FOLDERS), OutputSpec(MANIFEST))
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None  # NOTE: a dataset with no usable member is an error (BadInput in run), never a skip

    def run(self, context: StageContext) -> StageResult:
        options = DatasetParams.from_params(context.params)
        settings = ChunkSettings.from_params(context.params)
        layout = DatasetLayout(settings)
        excluded = excluded_by_platform(context.params)
        members = context.members()
        included: dict[str, dict[str, Any]] = {}
        items_of: dict[str, list[str]] = {}
        frames_in = 0
        for position, (twin, found) in enumerate(members.items()):
            context.check_cancelled()
            share = (position / max(1, len(members)), (position + 1) / max(1, len(members)))
            outcome = _take_twin(context, twin, found, settings, layout, options, share)
            if isinstance(outcome, str):
                excluded[twin] = outcome
                continue
            items, taken, decoded = outcome
            frames_in += decoded
            items_of[twin] = items
            included[twin] = taken
        if not included:
            reasons = "; ".join(f"{twin}: {why}" for twin, why in excluded.items()) or "no member twin was given"
            raise BadInput(f"no usable twin for dataset {options.name!r}: {reasons}")

        splits = _splits(items_of, options)
        every = sorted(item for items in items_of.values() for item in items)
        for split, listed in (*splits.items(), ("all", every)):
            path = context.output_path(layout.split_file(options.name, split))
            path.write_text("".join(f"{item}\n" for item in listed))
        counts = {folder.rstrip("/"): len(written_files(context.output_dir, folder)) for folder in FOLDERS}
        manifest = write_manifest(
            context,
            model=MODEL,
            included=included,
            excluded=excluded,
            splits={split: len(items) for split, items in splits.items()},
            files=counts,
            extra={
                "settings": settings.to_json(),
                "dataset_params": options.to_json(),
                "split_files": {split: layout.split_file(options.name, split) for split in (*SPLITS, "all")},
                "split_line": "{class}/{id}",
            },
        )
        outputs = [name for folder in FOLDERS for name in written_files(context.output_dir, folder)] + [manifest]
        chunks = len(every)
        context.progress(1.0, f"{chunks} chunk(s) from {len(included)} twin(s)")
        return StageResult(
            outputs=outputs,
            metrics={
                "frames_in": frames_in,
                "twins_included": len(included),
                "twins_excluded": len(excluded),
                "excluded": dict(excluded),
                "chunks": chunks,
                "files": len(outputs),
                **{f"split_{split}": len(items) for split, items in splits.items()},
            },
            message=(
                f"{chunks} chunk(s) of {settings.duration_s:g} s from {len(included)} twin(s) "
                f"({', '.join(f'{s} {len(i)}' for s, i in splits.items())}); {len(excluded)} twin(s) excluded"
            ),
        )


def _take_twin(
    context: StageContext,
    twin: str,
    found: Mapping[str, Any],
    settings: ChunkSettings,
    layout: DatasetLayout,
    options: DatasetParams,
    share: tuple[float, float],
) -> tuple[list[str], dict[str, Any], int] | str:
    """Write one twin's chunks: (items, what was taken, frames decoded), or the reason it is excluded."""
    missing = [relative for name, relative in MEMBER_FILES.items() if name not in found]
    if missing:
        return (
            f"its perceptalign preprocess has no {', '.join(missing)}: run the twin's perceptalign preprocess "
            "(it may have failed or be from an older version)"
        )
    cls = options.class_name or twin
    writer = TwinWriter(context.output_dir, layout, twin, cls, options.jpeg_quality)
    try:
        with open_bundle(found["chunks"], found["summary"]) as bundle:
            differences = settings.differences(bundle.summary.get("settings") or {})
            if differences:
                return (
                    f"its preprocess used {', '.join(differences)}: run its preprocess again with this dataset's "
                    "settings, or build the dataset with the twin's"
                )
            if bundle.chunks == 0:
                return str(bundle.summary.get("unusable") or "its recording is shorter than one chunk")
            samples = read_pcm16(found["audio"], settings.sample_rate_hz, name=files.AUDIO_WAV)

            def progress(fraction: float) -> None:
                context.progress(share[0] + (share[1] - share[0]) * 0.98 * fraction, f"twin {twin}: chunks")

            items, decoded = writer.write(context, found["video"], samples, bundle, progress)
            flow = bundle.summary.get("flow", {})
            taken = {
                "class": cls,
                "chunks": len(items),
                "frames": len(items) * settings.frames_per_chunk,
                "seconds": round(len(items) * settings.duration_s, 3),
                "tail_frames_dropped": bundle.summary.get("tail", {}).get("frames"),
                "audio_source": bundle.summary.get("audio_source"),
                "flow_algorithm": flow.get("algorithm"),
                "flow_size": [flow.get("width"), flow.get("height")],
                "ids": [item.split("/")[1] for item in items],
            }
            return items, taken, decoded
    except BadInput as exc:
        writer.discard()
        return str(exc)
    except BaseException:
        writer.discard()
        raise


def _splits(items_of: Mapping[str, list[str]], options: DatasetParams) -> dict[str, list[str]]:
    """{split: sorted items}: over chunks (the seed) or over whole twins."""
    if options.split_by == "twin":
        twins = assign_splits(sorted(items_of), options.fractions, options.seed)
        return {split: sorted(i for twin in chosen for i in items_of[twin]) for split, chosen in twins.items()}
    every = sorted(i for items in items_of.values() for i in items)
    return {split: sorted(chosen) for split, chosen in assign_splits(every, options.fractions, options.seed).items()}
