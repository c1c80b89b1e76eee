"""Landmark backends: 68 iBUG points per face per frame, from MediaPipe's face mesh or from FAN.

    mediapipe        the offline default; its models ship inside the mediapipe 0.10.21 wheel
    face_alignment   FAN (face_alignment 1.5.0); its weights come from the store, common/th/face_alignment/

`open_backend` is the one way in; the backend modules import their heavy libraries only when a backend is built.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.base import MissingWeights
from pipelines.th.face.backends.base import DEFAULT_MAX_FACES, LandmarkBackend
from pipelines.th.face.backends.fan import DETECTOR_FILES, FAN_FILE, STORE_FOLDER, FanBackend, store_names
from pipelines.th.face.backends.mediapipe_mesh import MediapipeBackend

BACKENDS = ("mediapipe", "face_alignment")

__all__ = ["BACKENDS", "LandmarkBackend", "open_backend"]


def open_backend(
    name: str, *, weights_dir: Path | None = None, max_faces: int = DEFAULT_MAX_FACES, video: bool = True
) -> LandmarkBackend:
    """The backend called `name`, ready to `detect`. Use it as a context manager, or `close()` it.

    video=True: the frames passed to `detect` are consecutive frames of one video (a backend may track);
    False: unrelated images. weights_dir is the local folder holding face_alignment's files (FAN only).
    """
    if name == "mediapipe":
        return MediapipeBackend(max_faces=max_faces, video=video)
    if name == "face_alignment":
        if weights_dir is None:
            files = (FAN_FILE, *DETECTOR_FILES["sfd"])
            raise MissingWeights(
                f"the face_alignment landmark backend needs its weights ({', '.join(files)}) from the store's "
                f"common/th/{STORE_FOLDER}/ folder, and none was given; upload them there, or use the mediapipe "
                f"backend",
                names=store_names(files),
            )
        return FanBackend(weights_dir, max_faces=max_faces)
    raise ValueError(f"unknown landmark backend {name!r}; known: {', '.join(BACKENDS)}")
