"""One member twin of a lawdnet dataset: its preprocess files, checked against each other before anything is written.

Every per-frame file must have exactly the timeline's `frames` rows and the audio exactly `samples` samples; a
twin whose files disagree (a preprocess interrupted or mixed from two versions), that was made with other audio
features than the dataset asks for, or that has too few clips of usable frames is left out, with a reason that
says what to do. Readers raise BadInput naming the file; `load_member` turns every such problem into the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.base import BadInput
from pipelines.lawdnet import outputs as files
from pipelines.lawdnet.clips import clip_starts
from pipelines.lawdnet.openface_csv import read_landmarks_csv
from pipelines.lawdnet.params import SAMPLE_RATE_HZ
from pipelines.lawdnet.timeline_file import TimelineRecord, read_timeline
from pipelines.media.frames import video_info
from pipelines.media.wav import read_pcm16
from pipelines.th import outputs as th_files

# input name -> the preprocess file it is (relative to the twin's processed/.../lawdnet/ folder)
MEMBER_FILES = {
    "video": th_files.VIDEO_MP4,
    "timeline": files.TIMELINE_JSON,
    "audio": files.AUDIO_WAV,
    "features": files.AUDIO_FEATURES,
    "landmarks_csv": files.LANDMARKS_CSV,
    "crops": files.CROPS_MP4,
    "crop_landmarks": files.CROP_LANDMARKS,
}
_FIX = "run the twin's lawdnet preprocess again"


@dataclass(frozen=True, eq=False)
class Member:
    """What the dataset takes from one twin. `features` is memory-mapped: a dataset of many long videos does not
    hold them all in memory."""

    twin: str
    paths: dict[str, Path]
    record: TimelineRecord
    success: np.ndarray
    features: np.ndarray
    clips: list[int]

    @property
    def frames(self) -> int:
        return self.record.timeline.frames

    @property
    def usable_frames(self) -> int:
        return int(np.count_nonzero(self.success))


class Excluded(Exception):
    """A member twin yields no usable data; the message is the manifest's reason."""


def load_member(
    twin: str, paths: dict[str, Path], *, audio_features: str, clip_frames: int, min_clips: int
) -> Member:
    """The twin's checked data, or Excluded with the reason."""
    missing = [relative for name, relative in MEMBER_FILES.items() if name not in paths]
    if len(missing) == len(MEMBER_FILES):
        raise Excluded("it has no lawdnet preprocess outputs: run the twin's lawdnet preprocess")
    if missing:
        raise Excluded(f"its lawdnet preprocess has no {', '.join(missing)}: run the twin's lawdnet preprocess")
    try:
        member = _read(twin, paths, clip_frames)
    except BadInput as exc:
        raise Excluded(str(exc)) from exc
    made_with = member.record.audio_features.get("name")
    if made_with != audio_features:
        raise Excluded(
            f"its audio features are {made_with!r} but this dataset takes {audio_features!r}: run the twin's lawdnet "
            f"preprocess with audio_features={audio_features}, or build the dataset with audio_features={made_with}"
        )
    if len(member.clips) < min_clips:
        raise Excluded(_too_few_clips(member, clip_frames, min_clips))
    return member


def _read(twin: str, paths: dict[str, Path], clip_frames: int) -> Member:
    record = read_timeline(paths["timeline"], files.TIMELINE_JSON)
    frames, samples = record.timeline.frames, record.timeline.samples
    rows = read_landmarks_csv(paths["landmarks_csv"], files.LANDMARKS_CSV)
    features = _map_array(paths["features"], files.AUDIO_FEATURES)
    crop_landmarks = _map_array(paths["crop_landmarks"], files.CROP_LANDMARKS)
    dim = record.audio_features.get("dim")
    _expect(rows.frames, frames, files.LANDMARKS_CSV, "rows")
    _expect_shape(features, (frames, dim), files.AUDIO_FEATURES)
    _expect_shape(crop_landmarks, (frames, 68, 2), files.CROP_LANDMARKS)
    audio = read_pcm16(paths["audio"], SAMPLE_RATE_HZ, name=files.AUDIO_WAV)
    _expect(audio.size, samples, files.AUDIO_WAV, "samples")
    crops = video_info(paths["crops"])
    _expect(crops.frames, frames, files.CROPS_MP4, "frames")
    if (crops.width, crops.height) != (files.CROP_WIDTH, files.CROP_HEIGHT):
        wanted = f"{files.CROP_WIDTH}x{files.CROP_HEIGHT}"
        raise BadInput(f"{files.CROPS_MP4} is {crops.width}x{crops.height}, not {wanted}: {_FIX}")
    video = video_info(paths["video"])
    if video.frames is not None and video.frames < frames:
        raise BadInput(f"{th_files.VIDEO_MP4} has {video.frames} frames, fewer than its timeline's {frames}: {_FIX}")
    clips = clip_starts(rows.success, clip_frames)
    return Member(twin, dict(paths), record, rows.success, features, clips)


def _map_array(path: Path, name: str) -> np.ndarray:
    """The .npy array memory-mapped (only its header is read now)."""
    try:
        array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{name} is not a readable .npy array ({exc}): {_FIX}") from exc
    return array


def _expect(found: int | None, wanted: int, name: str, what: str) -> None:
    if found != wanted:
        raise BadInput(f"{name} has {found} {what} but its timeline {wanted}: {_FIX}")


def _expect_shape(array: np.ndarray, shape: tuple[object, ...], name: str) -> None:
    if array.shape != shape or array.dtype != np.float32:
        raise BadInput(f"{name} is {array.dtype} {array.shape}, not float32 {shape} as its timeline says: {_FIX}")


def _too_few_clips(member: Member, clip_frames: int, min_clips: int) -> str:
    usable, frames = member.usable_frames, member.frames
    if usable == 0:
        return (
            f"none of its {frames} frames has a usable face (see face/quality.json of its preprocess); upload a "
            "video in which the person faces the camera, well lit, the face not cut by the frame's edge"
        )
    return (
        f"only {len(member.clips)} clip(s) of {clip_frames} consecutive usable frames ({usable} of its {frames} "
        f"frames are usable), fewer than the {min_clips} per video LawDNet needs (min_clips); upload a longer "
        "video with the face clearly visible throughout"
    )
