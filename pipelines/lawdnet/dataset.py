"""lawdnet dataset: the member twins' preprocess files laid out as DINet's `training_data`, plus its training JSON.

Under datasets/lawdnet/{name}/ ({video} = twin id; every per-frame folder holds exactly the twin's timeline frames):

    split_video_25fps_frame/{video}/{i:06d}.jpg          full frames
    split_video_25fps_crop_face/{video}/{i:06d}.jpg      416x320 aligned crops
    split_video_25fps_audio/{video}.wav                  16 kHz mono, frames * 640 samples
    split_video_25fps_deepspeech/{video}_deepspeech.txt  (frames, 29) audio features (np.savetxt)
    split_video_25fps_landmark_openface/{video}.csv      OpenFace-style landmarks, one row per frame
    split_video_25fps_crop_landmark/{video}.npy          (frames, 68, 2) float32 landmarks in crop pixels
    training_json.json                                   DINet's clip list of the train twins
    validation_json.json                                 the same for the val twins (when there are any)
    manifest.json

Twins are split whole (LawDNet draws reference frames from other clips of the same video, so a video split between
train and val would leak), by `assign_splits`. Parameters: see docs/datasets/lawdnet.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipelines.base import BadInput, InputSpec, OutputSpec, Pipeline, Resources, Source, StageContext, StageResult
from pipelines.dataset_kit.manifest import MANIFEST, excluded_by_platform, write_manifest, written_files
from pipelines.dataset_kit.params import whole_number
from pipelines.dataset_kit.splits import assign_splits
from pipelines.lawdnet import outputs as files
from pipelines.lawdnet import params as job_params
from pipelines.lawdnet.jpeg_frames import write_jpegs
from pipelines.lawdnet.members import MEMBER_FILES, Excluded, Member, load_member
from pipelines.lawdnet.training_json import write_training_json
from pipelines.th import outputs as th_files


class LawdnetDatasetStage:
    name = "lawdnet_dataset"
    version = "1"
    inputs: tuple[InputSpec, ...] = tuple(
        InputSpec(name, Source.MEMBER, relative=relative) for name, relative in MEMBER_FILES.items()
    )
    outputs: tuple[OutputSpec, ...] = (
        *(OutputSpec(folder) for folder in files.DATASET_FOLDERS),
        OutputSpec(files.TRAINING_JSON),
        OutputSpec(files.VALIDATION_JSON, optional=True),
        OutputSpec(MANIFEST),
    )
    resources = Resources(gpus=0)

    def applies(self, available_inputs: set[str], params: Mapping[str, Any] | None = None) -> str | None:
        return None  # NOTE: a dataset with no usable twin fails in `run`, naming each twin and why

    def run(self, context: StageContext) -> StageResult:
        settings = _Settings(context.params)
        excluded = excluded_by_platform(context.params)
        members = _load_members(context, settings, excluded)
        _split(members, settings)  # NOTE: a val_percent that leaves no twin to train on fails before any writing
        members, frames_in, crop_frames_in = _write_members(context, members, settings, excluded)
        split = _split(members, settings)
        by_twin = {member.twin: member for member in members}
        write_training_json(
            context.output_path(files.TRAINING_JSON),
            [by_twin[twin] for twin in split["train"]],
            settings.clip_frames,
            settings.path_prefix,
        )
        outputs = [files.TRAINING_JSON]
        if split["val"]:
            write_training_json(
                context.output_path(files.VALIDATION_JSON),
                [by_twin[twin] for twin in split["val"]],
                settings.clip_frames,
                settings.path_prefix,
            )
            outputs.append(files.VALIDATION_JSON)
        clips = {name: sum(len(by_twin[twin].clips) for twin in twins) for name, twins in split.items()}
        folder_files = {folder: written_files(context.output_dir, folder) for folder in files.DATASET_FOLDERS}
        manifest = write_manifest(
            context,
            model="lawdnet",
            included={member.twin: _taken(member, split) for member in members},
            excluded=excluded,
            splits={name: len(twins) for name, twins in split.items()},
            files={folder.rstrip("/"): len(names) for folder, names in folder_files.items()},
            extra={
                "clips": clips,
                "clip_frames": settings.clip_frames,
                "fps": job_params.FPS,
                "sample_rate_hz": job_params.SAMPLE_RATE_HZ,
                "samples_per_frame": job_params.SAMPLE_RATE_HZ // job_params.FPS,
                "crop": {"height": files.CROP_HEIGHT, "width": files.CROP_WIDTH},
                "audio_features": members[0].record.audio_features,
                "training_json": files.TRAINING_JSON,
                "validation_json": files.VALIDATION_JSON if split["val"] else None,
            },
        )
        context.progress(1.0, "dataset written")
        written = [name for names in folder_files.values() for name in names] + outputs + [manifest]
        return StageResult(
            outputs=written,
            metrics={
                "frames_in": frames_in,
                "crop_frames_in": crop_frames_in,
                "twins_included": len(members),
                "twins_excluded": len(excluded),
                "frames": sum(member.frames for member in members),
                "usable_frames": sum(member.usable_frames for member in members),
                "clips_train": clips["train"],
                "clips_val": clips["val"],
                "twins_train": len(split["train"]),
                "twins_val": len(split["val"]),
                "files": len(written),
            },
            message=(
                f"{len(members)} twin(s), {clips['train']} train and {clips['val']} val clips of "
                f"{settings.clip_frames} frames; {len(excluded)} twin(s) excluded"
            ),
        )


def _load_members(context: StageContext, settings: _Settings, excluded: dict[str, str]) -> list[Member]:
    """The member twins whose preprocess files are usable, in twin order; the others go into `excluded`."""
    members: list[Member] = []
    for twin, paths in sorted(context.members().items()):
        try:
            members.append(load_member(twin, paths, **settings.member_checks()))
        except Excluded as reason:
            excluded[twin] = str(reason)
    _check_any(context, members, excluded)
    return members


def _write_members(
    context: StageContext, members: list[Member], settings: _Settings, excluded: dict[str, str]
) -> tuple[list[Member], int, int]:
    """Write every member's files; returns the members written and the video and crop frames decoded. A twin
    whose video or crops only turn out broken when decoded is removed again and excluded."""
    written: list[Member] = []
    frames_in = crop_frames_in = 0
    for index, member in enumerate(members):
        try:
            video_frames, crop_frames = _write_member(context, member, settings, index, len(members))
        except BadInput as problem:
            _remove_member(context, member.twin)
            excluded[member.twin] = str(problem)
            continue
        frames_in, crop_frames_in = frames_in + video_frames, crop_frames_in + crop_frames
        written.append(member)
    _check_any(context, written, excluded)
    return written, frames_in, crop_frames_in


def _check_any(context: StageContext, members: list[Member], excluded: Mapping[str, str]) -> None:
    if not members:
        reasons = "; ".join(f"{twin}: {reason}" for twin, reason in sorted(excluded.items()))
        raise BadInput(
            f"no usable twin for lawdnet dataset {context.params.get('dataset', '')!r}: "
            f"{reasons or 'the dataset names no twins'}"
        )


class _Settings:
    """The dataset's parameters, read once with their defaults."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.clip_frames = whole_number(params, "clip_frames", job_params.DEFAULT_CLIP_FRAMES, 5, 250)
        self.min_clips = whole_number(params, "min_clips", job_params.DEFAULT_MIN_CLIPS, 1, 100000)
        self.val_percent = job_params.percent(params, "val_percent", job_params.DEFAULT_VAL_PERCENT)
        self.seed = whole_number(params, "seed", job_params.DEFAULT_SEED, 0, 2**63 - 1)
        self.jpeg_quality = whole_number(params, "jpeg_quality", job_params.DEFAULT_JPEG_QUALITY, 1, 100)
        self.audio_features = job_params.audio_features(params)
        self.path_prefix = job_params.text(params, "path_prefix", "")

    def member_checks(self) -> dict[str, Any]:
        return {"audio_features": self.audio_features, "clip_frames": self.clip_frames, "min_clips": self.min_clips}


def _split(members: list[Member], settings: _Settings) -> dict[str, list[str]]:
    """Whole twins to train and val; BadInput when val_percent leaves no twin to train on."""
    val = settings.val_percent / 100
    split = assign_splits([member.twin for member in members], {"train": 1 - val, "val": val}, settings.seed)
    if not split["train"]:
        raise BadInput(
            f"val_percent={settings.val_percent:g} leaves none of the {len(members)} usable twin(s) for training: "
            "lower val_percent or add twins"
        )
    return {name: sorted(twins) for name, twins in split.items()}


def _write_member(
    context: StageContext, member: Member, settings: _Settings, index: int, count: int
) -> tuple[int, int]:
    """Write one twin's files; returns the frames decoded from its video and from its crops."""
    twin, frames = member.twin, member.frames
    share = 1.0 / count

    def report(written: int, part: int) -> None:
        done = index + (part + written / frames) / 2
        context.progress(min(0.99, done * share), f"{twin}: {'frames' if part == 0 else 'crops'} {written}/{frames}")
        context.check_cancelled()

    video_frames = write_jpegs(
        member.paths["video"],
        context.output_dir / files.FRAME_DIR / twin,
        frames,
        settings.jpeg_quality,
        name=th_files.VIDEO_MP4,
        on_batch=lambda written: report(written, 0),
    )
    crop_frames = write_jpegs(
        member.paths["crops"],
        context.output_dir / files.CROP_FACE_DIR / twin,
        frames,
        settings.jpeg_quality,
        name=files.CROPS_MP4,
        on_batch=lambda written: report(written, 1),
    )
    shutil.copyfile(member.paths["audio"], context.output_path(f"{files.AUDIO_DIR}{twin}.wav"))
    shutil.copyfile(member.paths["landmarks_csv"], context.output_path(f"{files.LANDMARK_DIR}{twin}.csv"))
    np.savetxt(context.output_path(f"{files.DEEPSPEECH_DIR}{twin}_deepspeech.txt"), member.features, fmt="%.9g")
    shutil.copyfile(member.paths["crop_landmarks"], context.output_path(f"{files.CROP_LANDMARK_DIR}{twin}.npy"))
    return video_frames, crop_frames


def _remove_member(context: StageContext, twin: str) -> None:
    """Delete what `_write_member` wrote of `twin` (its folders and files in every dataset folder)."""
    for folder in (files.FRAME_DIR, files.CROP_FACE_DIR):
        shutil.rmtree(context.output_dir / folder / twin, ignore_errors=True)
    for relative in (
        f"{files.AUDIO_DIR}{twin}.wav",
        f"{files.LANDMARK_DIR}{twin}.csv",
        f"{files.DEEPSPEECH_DIR}{twin}_deepspeech.txt",
        f"{files.CROP_LANDMARK_DIR}{twin}.npy",
    ):
        (context.output_dir / relative).unlink(missing_ok=True)


def _taken(member: Member, split: Mapping[str, list[str]]) -> dict[str, Any]:
    record = member.record
    return {
        "split": next(name for name, twins in split.items() if member.twin in twins),
        "frames": member.frames,
        "video_frames": record.video_frames,
        "usable_frames": member.usable_frames,
        "clips": len(member.clips),
        "samples": record.timeline.samples,
        "dropped_video_frames": record.timeline.dropped_video_frames,
        "dropped_audio_samples": record.timeline.dropped_audio_samples,
        "audio_source": record.audio_source,
    }


def build_pipeline() -> Pipeline:
    return Pipeline("lawdnet", "dataset", "datasets", (LawdnetDatasetStage(),))
