"""The per-twin bundle the frames stage writes and the dataset task reads: `bilayer/samples.npz`.

One compressed `.npz` (no pickles) with a format version. N kept frames, M sampled frames (N <= M), S the crop size:

    imgs            (N,S,S,3) uint8    RGB face crops
    keypoints       (N,68,2) float32   the 68 iBUG landmarks in crop pixels, (0, 0) the centre of the top-left pixel
    segs            (N,S,S) uint8      person masks, 0 background / 255 person
    frame_index     (N,) int64         each crop's frame in the normalised video (0-based)
    boxes           (N,4) int32        each crop's square in frame pixels: x0, y0, x1, y1 (exclusive; may reach
                                       beyond the frame)
    sampled_index   (M,) int64         every sampled frame: 0, sampling_rate, 2 * sampling_rate, ...
    sampled_reason  (M,) str           "ok" for a kept frame, else why it was rejected
    fps, sampling_rate, image_size, frames, video_id
                                       scalars: the video's rate, the sampling step, S, the video's frame count,
                                       and an 11-character id of the normalised video (first hex digits of its SHA-256)

An empty bundle (N = 0) is valid: the twin's video had no usable sampled frame; the dataset task excludes the twin.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput

FORMAT_VERSION = 1
VIDEO_ID_LENGTH = 11
OK = "ok"
_SCALARS: dict[str, type] = {"fps": float, "sampling_rate": int, "image_size": int, "frames": int, "video_id": str}


@dataclass(frozen=True, eq=False)
class Samples:
    imgs: np.ndarray
    keypoints: np.ndarray
    segs: np.ndarray
    frame_index: np.ndarray
    boxes: np.ndarray
    sampled_index: np.ndarray
    sampled_reason: np.ndarray
    fps: float
    sampling_rate: int
    image_size: int
    frames: int
    video_id: str

    @property
    def count(self) -> int:
        return int(self.frame_index.shape[0])

    def rejected(self) -> dict[str, int]:
        """{reason: sampled frames rejected for it}, most frequent first (ties by name)."""
        reasons, counts = np.unique(self.sampled_reason[self.sampled_reason != OK], return_counts=True)
        pairs = sorted(zip(reasons.tolist(), counts.tolist(), strict=True), key=lambda pair: (-pair[1], pair[0]))
        return {str(reason): int(count) for reason, count in pairs}

    def check(self, name: str) -> None:
        """ValueError naming `name` when the arrays do not fit together (a bug in the writer or a damaged file)."""
        n, size = self.count, self.image_size
        expected = {
            "imgs": ((n, size, size, 3), np.uint8),
            "keypoints": ((n, 68, 2), np.float32),
            "segs": ((n, size, size), np.uint8),
            "frame_index": ((n,), np.int64),
            "boxes": ((n, 4), np.int32),
        }
        for field_name, (shape, dtype) in expected.items():
            array = getattr(self, field_name)
            if array.shape != shape or array.dtype != dtype:
                wanted = f"{np.dtype(dtype).name} {shape}"
                raise ValueError(f"{name}: {field_name} is {array.dtype} {array.shape}, expected {wanted}")
        if self.sampled_index.shape != self.sampled_reason.shape or self.sampled_index.ndim != 1:
            raise ValueError(f"{name}: sampled_index and sampled_reason do not match")
        if int(np.count_nonzero(self.sampled_reason == OK)) != n:
            raise ValueError(f"{name}: {n} crops but {int(np.count_nonzero(self.sampled_reason == OK))} kept frames")
        if len(self.video_id) != VIDEO_ID_LENGTH or self.sampling_rate < 1 or size < 1:
            raise ValueError(f"{name}: video_id, sampling_rate or image_size is invalid")


def save_samples(path: Path, samples: Samples) -> None:
    """Write atomically (a temporary file renamed into place); the same samples give the same bytes (zip entries
    carry a fixed date)."""
    samples.check(path.name)
    arrays: dict[str, Any] = {f.name: np.asarray(getattr(samples, f.name)) for f in fields(samples)}
    arrays["sampled_reason"] = np.asarray(samples.sampled_reason, dtype="<U24")
    arrays["format_version"] = np.int64(FORMAT_VERSION)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as handle:
            np.savez_compressed(handle, allow_pickle=False, **arrays)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def load_samples(path: Path, name: str) -> Samples:
    """Read a samples file; BadInput naming `name` (whose file it is) when it is unreadable, of another format
    version or inconsistent."""
    fix = "run the twin's bilayer preprocess again"
    try:
        # NOTE: the file is opened here, not by np.load, which leaves its handle open when the zip is damaged
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise BadInput(f"{name} has samples format {version}, this platform reads {FORMAT_VERSION}: {fix}")
            values: dict[str, Any] = {}
            for f in fields(Samples):
                value = data[f.name]
                values[f.name] = _SCALARS[f.name](value.item()) if f.name in _SCALARS else value
        samples = Samples(**values)
        samples.check(name)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{name} is not a readable bilayer samples file ({exc}): {fix}") from exc
    return samples
