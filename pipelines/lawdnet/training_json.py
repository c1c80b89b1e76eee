"""DINet's training JSON (what `--generate_training_json` writes and LawDNet's `DINetDataset` reads).

    {video: {"video_clip_num": n,
             "clip_data_list": [{"frame_name_list": ["{video}/000009.jpg", ...],      clip_frames names
                                 "frame_path_list": ["{prefix}split_video_25fps_crop_face/{video}/000009.jpg", ...],
                                 "deep_speech_list": [[29 floats], ...],              clip_frames rows
                                 "start_frame": 9}, ...]}}

The loader opens `frame_path_list` as given, so paths are relative to the dataset's folder with `path_prefix`
in front (e.g. "./asserts/training_data/" to drop the folder into the LawDNet repository as its training_data).
`start_frame` is extra (the loader ignores it): the clip's first frame, to find its full frames and audio.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.lawdnet.members import Member
from pipelines.lawdnet.outputs import CROP_FACE_DIR


def frame_name(twin: str, frame: int) -> str:
    return f"{twin}/{frame:06d}.jpg"


def video_entry(member: Member, clip_frames: int, path_prefix: str) -> dict[str, Any]:
    clips = []
    for start in member.clips:
        names = [frame_name(member.twin, frame) for frame in range(start, start + clip_frames)]
        clips.append(
            {
                "frame_name_list": names,
                "frame_path_list": [f"{path_prefix}{CROP_FACE_DIR}{name}" for name in names],
                "deep_speech_list": np.asarray(member.features[start : start + clip_frames]).tolist(),
                "start_frame": start,
            }
        )
    return {"video_clip_num": len(clips), "clip_data_list": clips}


def write_training_json(path: Path, members: Iterable[Member], clip_frames: int, path_prefix: str) -> None:
    """Videos in sorted order (as DINet lists them), compact, keys sorted: the same data gives the same bytes."""
    document = {member.twin: video_entry(member, clip_frames, path_prefix) for member in members}
    path.write_text(json.dumps(dict(sorted(document.items())), sort_keys=True, separators=(",", ":")))
