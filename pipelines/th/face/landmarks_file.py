"""The landmarks file the face stage writes and every later stage reads (`face/video_landmarks.npz`, and
`face/image_landmarks.npz` for the twin's photo, N = 1).

One `.npz` (no pickles) with a format version; arrays are per frame (N frames of the normalised video):

    points        (N,68,2) float32  smoothed iBUG landmarks, frame pixels; NaN where no main face
    points_raw    (N,68,2) float32  the same before smoothing
    confidence    (N,) float32      the backend's confidence for the main face, 0 where none
    boxes         (N,4) float32     main face box x0,y0,x1,y1; NaN where none
    usable        (N,) bool         the quality decision for the frame
    reasons       (N,) str          "ok" or why the frame is not usable (see `face.quality`)
    faces_count   (N,) int16        faces the backend saw
    yaw, pitch, roll (N,) float32   head pose in degrees (NaN where no face)
    blur          (N,) float32      sharpness score of the face region (NaN where no face)
    fps, width, height, backend     scalars: the video's rate and size, the landmark backend's name
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    points: np.ndarray
    points_raw: np.ndarray
    confidence: np.ndarray
    boxes: np.ndarray
    usable: np.ndarray
    reasons: np.ndarray
    faces_count: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    blur: np.ndarray
    fps: float
    width: int
    height: int
    backend: str

    @property
    def frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def found(self) -> np.ndarray:
        """(N,) bool: frames with a main face."""
        return np.asarray(np.isfinite(self.points).all(axis=(1, 2)))


_SCALARS = {"fps": float, "width": int, "height": int, "backend": str}


def save_landmarks(path: Path, landmarks: FaceLandmarks) -> None:
    """Write atomically (a temporary file renamed into place), so a crash never leaves half a file."""
    arrays: dict[str, Any] = {f.name: np.asarray(getattr(landmarks, f.name)) for f in fields(landmarks)}
    arrays["reasons"] = np.asarray(landmarks.reasons, dtype="<U24")
    arrays["format_version"] = np.int32(FORMAT_VERSION)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as handle:
            np.savez_compressed(handle, **arrays)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def load_landmarks(path: Path) -> FaceLandmarks:
    """Read a landmarks file; `BadInput` naming the file if it is unreadable or of an unknown version."""
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise BadInput(
                    f"{path.name} has landmarks format {version}, this platform reads {FORMAT_VERSION}: "
                    "run the twin's preprocess again"
                )
            values = {}
            for f in fields(FaceLandmarks):
                value = data[f.name]
                values[f.name] = _SCALARS[f.name](value.item()) if f.name in _SCALARS else value
    except (OSError, KeyError, ValueError) as exc:
        raise BadInput(
            f"{path.name} is not a readable landmarks file ({exc}): run the twin's preprocess again"
        ) from exc
    return FaceLandmarks(**values)
