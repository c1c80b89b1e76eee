"""The `samples` stage of the facesync dataset task: member twins' tracks -> validated samples, split, statistics.

For every member twin it reads `facesync/track.npz`, cuts windows of `window_frames` at stride
`window_frames // augment_factor`, validates each with the same `validation.validate_windows` the twin's report
used, assigns every base window (with its shifted copies, `windows`) to train or val with the kit's
`assign_splits`, and writes one `.npz` per valid window. `lm_mean.npy`/`lm_std.npy` come from the train samples
only (`stats`). A member that gives no valid window (no track, other rates, too short, every window invalid) is
excluded with the reason; when no member is usable the stage fails naming each twin and why.

Parameters: window_frames (25), augment_factor (1), train_percent (0.9), seed (0), fps (25), the
`validation.WindowThresholds`; and the platform's twins, excluded, dataset.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput, InputSpec, OutputSpec, Resources, Source, StageContext, StageResult
from pipelines.dataset_kit.manifest import MANIFEST, excluded_by_platform, write_manifest, written_files
from pipelines.dataset_kit.splits import assign_splits
from pipelines.facesync import params as P
from pipelines.facesync.npz import write_npz
from pipelines.facesync.outputs import LM_MEAN, LM_STD, TRACK_NPZ, TRAIN_DIR, VAL_DIR, VALIDATION_JSON, sample_name
from pipelines.facesync.stats import STD_FLOOR, LandmarkStats
from pipelines.facesync.track_file import Track, load_track, samples_per_frame
from pipelines.facesync.validation import WindowThresholds, count_reasons, validate_windows
from pipelines.facesync.windows import base_windows, stride_frames, unit_id, window_starts

MODEL = "facesync"
SPLITS = {"train": TRAIN_DIR, "val": VAL_DIR}


@dataclass(frozen=True)
class DatasetSettings:
    window_frames: int
    augment_factor: int
    stride_frames: int
    train_percent: float
    seed: int
    fps: float
    sample_rate_hz: int
    thresholds: WindowThresholds

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DatasetSettings:
        window = P.window_frames(params)
        factor = P.augment_factor(params, window)
        fps, sample_rate_hz = P.fps(params), P.sample_rate_hz(params)
        samples_per_frame(fps, sample_rate_hz)  # refuses rates that give fractional frames of audio
        return cls(
            window_frames=window,
            augment_factor=factor,
            stride_frames=stride_frames(window, factor),
            train_percent=P.train_percent(params),
            seed=P.seed(params),
            fps=fps,
            sample_rate_hz=sample_rate_hz,
            thresholds=WindowThresholds.from_params(params),
        )


@dataclass
class TwinWindows:
    """What one usable twin gives: its valid windows and the base window (split unit) of each."""

    twin: str
    track_path: Path
    frames: int
    audio_source: str
    backend: str
    windows: int
    starts: np.ndarray
    units: list[str]
    discarded: dict[str, int]
    preprocess_validation: dict[str, Any] | None
    samples: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    split_units: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})


class SamplesStage:
    name = "samples"
    version = "1"
    inputs: tuple[InputSpec, ...] = (
        InputSpec("track", Source.MEMBER, relative=TRACK_NPZ),
        InputSpec("validation", Source.MEMBER, relative=VALIDATION_JSON, optional=True),
    )
    outputs: tuple[OutputSpec, ...] = (
        OutputSpec(TRAIN_DIR),
        OutputSpec(VAL_DIR, optional=True),
        OutputSpec(LM_MEAN),
        OutputSpec(LM_STD),
        OutputSpec(MANIFEST),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None  # members without a track are reported one by one, as exclusions

    def run(self, context: StageContext) -> StageResult:
        settings = DatasetSettings.from_params(context.params)
        excluded = excluded_by_platform(context.params)
        members = context.members()
        _remove_stale_outputs(context.output_dir)

        usable: dict[str, TwinWindows] = {}
        frames_in = 0
        for index, (twin, files) in enumerate(sorted(members.items())):
            context.progress(0.3 * index / max(1, len(members)), f"validating the windows of {twin}")
            context.check_cancelled()
            frames_read, outcome = _twin_windows(twin, files, settings)
            frames_in += frames_read
            if isinstance(outcome, str):
                excluded[twin] = outcome
            else:
                usable[twin] = outcome
        if not usable:
            listed = "; ".join(f"{twin}: {reason}" for twin, reason in sorted(excluded.items())) or "no twin was given"
            raise BadInput(f"no usable twin for facesync dataset {context.params.get('dataset', '')!r}: {listed}")

        all_units = sorted({unit for twin in usable.values() for unit in twin.units})
        fractions = {"train": settings.train_percent, "val": 1.0 - settings.train_percent}
        unit_split = {
            unit: split for split, units in assign_splits(all_units, fractions, settings.seed).items() for unit in units
        }
        if "train" not in unit_split.values():
            raise BadInput(
                f"train_percent={settings.train_percent} of {len(all_units)} base windows puts none in train: "
                "raise train_percent or add twins"
            )

        stats = _write_samples(context, usable, unit_split, settings)
        np.save(context.output_path(LM_MEAN), stats.mean())
        np.save(context.output_path(LM_STD), stats.std())
        splits = {name: sum(twin.samples[name] for twin in usable.values()) for name in SPLITS}
        unit_counts = {name: sum(1 for split in unit_split.values() if split == name) for name in SPLITS}
        written = written_files(context.output_dir, TRAIN_DIR) + written_files(context.output_dir, VAL_DIR)
        manifest = write_manifest(
            context,
            model=MODEL,
            included={name: _taken(twin) for name, twin in usable.items()},
            excluded=excluded,
            splits=splits,
            files={name: len(written_files(context.output_dir, folder)) for name, folder in SPLITS.items()},
            extra=_extra(settings, unit_counts, stats),
        )
        windows = sum(twin.windows for twin in usable.values())
        valid = sum(splits.values())
        discarded = _merged(twin.discarded for twin in usable.values())
        context.progress(1.0, "dataset written")
        return StageResult(
            outputs=[*written, LM_MEAN, LM_STD, manifest],
            metrics={
                "frames_in": frames_in,
                "twins": len(members),
                "twins_used": len(usable),
                "twins_excluded": len(excluded),
                "windows": windows,
                "valid_windows": valid,
                "discarded": discarded,
                "train_samples": splits["train"],
                "val_samples": splits["val"],
                "train_units": unit_counts["train"],
                "val_units": unit_counts["val"],
            },
            message=(
                f"{valid} samples of {settings.window_frames} frames from {len(usable)} twin(s): train "
                f"{splits['train']}, val {splits['val']}; {windows - valid} window(s) discarded"
                + (f"; excluded: {', '.join(sorted(excluded))}" if excluded else "")
            ),
        )


def _twin_windows(twin: str, files: Mapping[str, Path], settings: DatasetSettings) -> tuple[int, TwinWindows | str]:
    """(frames read, the twin's valid windows or why it gives none: its exclusion reason)."""
    if "track" not in files:
        return 0, f"no {TRACK_NPZ} in its facesync preprocess: run the twin's facesync preprocess"
    try:
        track = load_track(files["track"])
    except BadInput as exc:
        return 0, str(exc)
    return track.frames, _valid_windows(twin, files, track, settings)


def _valid_windows(twin: str, files: Mapping[str, Path], track: Track, settings: DatasetSettings) -> TwinWindows | str:
    window = settings.window_frames
    if (track.fps, track.sample_rate_hz) != (settings.fps, settings.sample_rate_hz):
        return (
            f"its track is {track.fps:g} fps / {track.sample_rate_hz} Hz but the dataset's samples are "
            f"{settings.fps:g} fps / {settings.sample_rate_hz} Hz: preprocess it again with fps={settings.fps:g}"
        )
    if track.frames < window:
        return (
            f"its track has {track.frames} frames ({track.frames / track.fps:.2f} s), fewer than one window of "
            f"{window} frames: upload a longer video or lower window_frames"
        )
    starts = window_starts(track.frames, window, settings.stride_frames)
    reasons = validate_windows(track, starts, window, settings.thresholds)
    valid, discarded = count_reasons(reasons)
    if not valid:
        listing = ", ".join(f"{reason}: {count}" for reason, count in discarded.items())
        return f"none of its {starts.size} windows of {window} frames is valid ({listing}); see its {VALIDATION_JSON}"
    kept = starts[reasons == "ok"]
    return TwinWindows(
        twin=twin,
        track_path=files["track"],
        frames=track.frames,
        audio_source=track.audio_source,
        backend=track.backend,
        windows=int(starts.size),
        starts=kept,
        units=[unit_id(twin, int(base), window) for base in base_windows(kept, window)],
        discarded=discarded,
        preprocess_validation=_preprocess_report(files.get("validation")),
    )


def _write_samples(
    context: StageContext, usable: Mapping[str, TwinWindows], unit_split: Mapping[str, str], settings: DatasetSettings
) -> LandmarkStats:
    """Write every valid window into its split's folder (twins and windows in sorted order, so the statistics'
    float rounding is the same however the twins were listed); returns the train statistics."""
    stats = LandmarkStats()
    total = sum(twin.starts.size for twin in usable.values())
    done = 0
    for twin in usable.values():
        track = load_track(twin.track_path)
        seen_units: dict[str, set[str]] = {"train": set(), "val": set()}
        for start, unit in zip(twin.starts.tolist(), twin.units, strict=True):
            split = unit_split[unit]
            landmarks = _write_sample(context, SPLITS[split], twin.twin, track, start, settings.window_frames)
            if split == "train":
                stats.add(landmarks)
            twin.samples[split] += 1
            seen_units[split].add(unit)
            done += 1
            if done % 64 == 0:
                context.progress(0.3 + 0.7 * done / total, f"writing samples: {done}/{total}")
                context.check_cancelled()
        twin.split_units = {split: len(units) for split, units in seen_units.items()}
    return stats


def _write_sample(context: StageContext, folder: str, twin: str, track: Track, start: int, window: int) -> np.ndarray:
    stop = start + window
    per_frame = track.samples_per_frame
    landmarks = track.landmarks[start:stop]
    write_npz(
        context.output_path(folder + sample_name(twin, start)),
        {
            "landmarks": landmarks,
            "audio": track.audio[start * per_frame : stop * per_frame],
            "centre": track.centre[start:stop],
            "scale": np.asarray(track.scale, dtype=np.float64),
            "twin": np.asarray(twin),
            "start_frame": np.asarray(start, dtype=np.int64),
            "fps": np.asarray(track.fps, dtype=np.float64),
            "sample_rate_hz": np.asarray(track.sample_rate_hz, dtype=np.int64),
        },
    )
    return landmarks


def _extra(settings: DatasetSettings, unit_counts: Mapping[str, int], stats: LandmarkStats) -> dict[str, Any]:
    """The manifest's facesync part: how the samples were cut, split and normalised."""
    return {
        "window_frames": settings.window_frames,
        "stride_frames": settings.stride_frames,
        "augment_factor": settings.augment_factor,
        "fps": settings.fps,
        "sample_rate_hz": settings.sample_rate_hz,
        "samples_per_window": settings.window_frames * samples_per_frame(settings.fps, settings.sample_rate_hz),
        "thresholds": settings.thresholds.to_dict(),
        "split_unit": "base window: frames [k * W, (k + 1) * W) of one twin, with its shifted copies",
        "split_units": dict(unit_counts),
        "stats": {
            "files": [LM_MEAN, LM_STD],
            "shape": [68, 2],
            "from": "train",
            "frames": stats.count,
            "std_floor": STD_FLOOR,
        },
    }


def _taken(twin: TwinWindows) -> dict[str, Any]:
    taken: dict[str, Any] = {
        "frames": twin.frames,
        "audio_source": twin.audio_source,
        "landmark_backend": twin.backend,
        "windows": twin.windows,
        "valid": int(twin.starts.size),
        "discarded": twin.discarded,
        "samples": dict(twin.samples),
        "split_units": dict(twin.split_units),
    }
    if twin.preprocess_validation is not None:
        taken["preprocess_validation"] = twin.preprocess_validation
    return taken


def _preprocess_report(path: Path | None) -> dict[str, Any] | None:
    """The headline of the twin's own validation report (stride = window), recorded next to the dataset's counts."""
    if path is None:
        return None
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"unreadable": VALIDATION_JSON}
    keys = ("window_frames", "windows", "valid", "discarded", "usable_frames", "frames")
    return {key: report[key] for key in keys if key in report}


def _merged(counts: Any) -> dict[str, int]:
    merged: dict[str, int] = {}
    for count in counts:
        for reason, number in count.items():
            merged[reason] = merged.get(reason, 0) + number
    return dict(sorted(merged.items()))


def _remove_stale_outputs(output_dir: Path) -> None:
    """A rebuild into the same folder must not keep samples of the previous build (they would be listed)."""
    for folder in SPLITS.values():
        shutil.rmtree(output_dir / folder, ignore_errors=True)
