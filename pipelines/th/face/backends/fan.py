"""The FAN landmark backend (`face_alignment` 1.5.0: an S3FD or BlazeFace face detector, then 2DFAN-4 heatmaps).

Its weights are never downloaded: face_alignment would fetch them into the torch hub cache, but here they come from
the store (`common/th/face_alignment/<file>`), synced by the platform into a local folder, `weights_dir`. Before
anything is built, every needed file must be in that folder (else MissingWeights names them). face_alignment then
finds them through a private torch hub folder whose `checkpoints` is a link to `weights_dir`, set only while the
models load, so the user's own cache (~/.cache/torch) is neither read nor written. The detector weights are passed
by path (face_alignment then loads them with `weights_only=True`, as it always does for FAN).

Confidence: the mean over the 68 points of the heatmap peak. FAN is trained to draw a unit-height Gaussian at each
point, so the peak is near 1 where the network is sure and falls towards 0 where it is not (occlusion, not a face).
"""

from __future__ import annotations

import inspect
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import MissingWeights
from pipelines.th.face.backends.base import DEFAULT_MAX_FACES, ClosingBackend, check_frame
from pipelines.th.face.types import NUM_LANDMARKS, FaceDetection, FrameFaces

STORE_FOLDER = "face_alignment"
"""Where the files live in the store, relative to common/th/."""

FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
DETECTOR_FILES: dict[str, tuple[str, ...]] = {
    "sfd": ("s3fd-619a316812.pth",),
    "blazeface": ("blazeface.pth", "anchors.npy"),
}
"""The file names are the basenames of face_alignment's download URLs: the names it looks for in a hub cache."""

_HUB_LOCK = threading.Lock()  # torch.hub's folder is process-wide: one construction at a time may redirect it


def required_files(detector: str) -> tuple[str, ...]:
    """The weight files (names in `weights_dir`) that FAN with `detector` needs."""
    if detector not in DETECTOR_FILES:
        known = ", ".join(DETECTOR_FILES)
        raise ValueError(f"unknown face detector {detector!r} for face_alignment; use one of {known}")
    return (FAN_FILE, *DETECTOR_FILES[detector])


def store_names(files: Sequence[str]) -> tuple[str, ...]:
    """The files' names relative to the store's common/th/ folder (what MissingWeights.names carries)."""
    return tuple(f"{STORE_FOLDER}/{name}" for name in files)


class FanBackend(ClosingBackend):
    """S3FD (or BlazeFace) + 2DFAN-4 on `device`. Finds faces in every frame independently: FAN does not track.

    flip_input also runs FAN on the mirrored crop and averages the heatmaps (face_alignment's default: steadier
    points for twice the FAN time).
    """

    name = "face_alignment"

    def __init__(
        self,
        weights_dir: Path,
        *,
        detector: str = "sfd",
        device: str = "cpu",
        max_faces: int = DEFAULT_MAX_FACES,
        flip_input: bool = True,
    ) -> None:
        if max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces}")
        self.max_faces = max_faces
        self.weights_dir = Path(weights_dir)
        self._heatmap_passes = 2 if flip_input else 1
        files = required_files(detector)
        missing = [name for name in files if not (self.weights_dir / name).is_file()]
        if missing:
            raise MissingWeights(
                f"the face_alignment landmark backend needs {', '.join(missing)} in {self.weights_dir}; upload "
                f"{'them' if len(missing) > 1 else 'it'} to the store under common/th/{STORE_FOLDER}/ (the names "
                f"must be exactly these: they are face_alignment's own), or use the mediapipe backend",
                names=store_names(missing),
            )
        face_alignment = _import_face_alignment()
        options: dict[str, Any] = {
            "device": device,
            "flip_input": flip_input,
            "face_detector": detector,
            "face_detector_kwargs": _detector_paths(self.weights_dir, detector),
        }
        if "compile" in inspect.signature(face_alignment.FaceAlignment.__init__).parameters:
            options["compile"] = False  # torch.compile would take minutes on CPU and cache into ~/.cache
        try:
            with _private_torch_hub(self.weights_dir):
                self._model: Any = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **options)
        except Exception as error:
            _raise_for_bad_file(self.weights_dir, files, error)
            raise

    def detect(self, frames: Sequence[np.ndarray]) -> list[FrameFaces]:
        if self._model is None:
            raise RuntimeError("this FanBackend is closed")
        return [self._detect_one(check_frame(frame, index)) for index, frame in enumerate(frames)]

    def _detect_one(self, image: np.ndarray) -> FrameFaces:
        found = [np.asarray(box, dtype=np.float64) for box in self._model.face_detector.detect_from_image(image)]
        found = sorted((box for box in found if box.size >= 5), key=lambda box: -float(box[4]))[: self.max_faces]
        if not found:
            return []  # face_alignment would warn "No faces were detected" if asked to fit none
        landmarks, scores, _ = self._model.get_landmarks_from_image(
            image, detected_faces=found, return_landmark_score=True
        )
        faces: FrameFaces = []
        for box, points, peaks in zip(found, landmarks, scores, strict=True):
            points = np.asarray(points, dtype=np.float32)[:, :2]
            if points.shape != (NUM_LANDMARKS, 2) or not np.all(np.isfinite(points)):
                continue
            peak = float(np.mean(np.asarray(peaks, dtype=np.float64))) / self._heatmap_passes
            faces.append(
                FaceDetection(
                    points=points,
                    confidence=min(max(peak, 0.0), 1.0),
                    box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                )
            )
        return faces

    def reset(self) -> None:
        """Nothing to forget: every frame is handled on its own."""

    def close(self) -> None:
        self._model = None


def _import_face_alignment() -> Any:
    try:
        import face_alignment
    except ImportError as error:
        raise MissingWeights(
            f"the face_alignment landmark backend needs the face-alignment package ({error}); run scripts/setup, "
            f"or `pip install --no-deps face-alignment==1.5.0`",
            names=(),
        ) from error
    return face_alignment


def _detector_paths(weights_dir: Path, detector: str) -> dict[str, str]:
    if detector == "blazeface":
        weights, anchors = DETECTOR_FILES["blazeface"]
        return {"path_to_detector": str(weights_dir / weights), "path_to_anchor": str(weights_dir / anchors)}
    return {"path_to_detector": str(weights_dir / DETECTOR_FILES[detector][0])}


@contextmanager
def _private_torch_hub(weights_dir: Path) -> Iterator[None]:
    """Point torch.hub at a throwaway folder whose `checkpoints` is `weights_dir`, then put it back exactly.

    `torch.hub._hub_dir` is read directly because `get_dir()` would turn "unset, follow $TORCH_HOME" into a fixed
    folder when restored.
    """
    import torch.hub

    with _HUB_LOCK, tempfile.TemporaryDirectory(prefix="fan-hub-") as hub:
        os.symlink(weights_dir.resolve(), Path(hub) / "checkpoints", target_is_directory=True)
        previous = getattr(torch.hub, "_hub_dir", None)
        torch.hub.set_dir(hub)
        try:
            yield
        finally:
            torch.hub._hub_dir = previous


def _raise_for_bad_file(weights_dir: Path, files: Sequence[str], error: Exception) -> None:
    """If one of `files` cannot be what face_alignment expects, raise MissingWeights naming it (from `error`)."""
    for name in files:
        problem = _file_problem(weights_dir / name)
        if problem:
            raise MissingWeights(
                f"{name} in {weights_dir} {problem}; replace it in the store at common/th/{STORE_FOLDER}/{name} with "
                f"face_alignment's original file (it failed with: {_first_line(error)})",
                names=store_names([name]),
            ) from error


def _file_problem(path: Path) -> str | None:
    """Why `path` is not the weights its name promises, or None if it loads into the right network."""
    if path.suffix == ".npy":
        try:
            anchors = np.load(path, allow_pickle=False)
        except Exception as error:
            return f"is not a readable .npy array (corrupt or truncated?): {_first_line(error)}"
        if anchors.ndim != 2 or anchors.shape[1] != 4:
            return f"holds an array of shape {anchors.shape}, not BlazeFace's (N, 4) anchors"
        return None
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        return f"is not a readable PyTorch weights file (corrupt, truncated or not weights): {_first_line(error)}"
    if not isinstance(state, dict):
        return f"holds a {type(state).__name__}, not a dictionary of weights"
    network = _network_for(path.name)
    if network is None:
        return None
    try:
        network().load_state_dict(state)
    except Exception as error:
        return f"does not hold the weights of the network it is named after (wrong file?): {_first_line(error)}"
    return None


def _network_for(file_name: str) -> Callable[[], Any] | None:
    """A constructor of the untrained network whose weights `file_name` should hold."""
    if file_name == FAN_FILE:
        from face_alignment.models import FAN

        return lambda: FAN(4)
    if file_name == DETECTOR_FILES["sfd"][0]:
        from face_alignment.detection.sfd.net_s3fd import s3fd

        return s3fd  # type: ignore[no-any-return]
    if file_name == DETECTOR_FILES["blazeface"][0]:
        from face_alignment.detection.blazeface.net_blazeface import BlazeFace

        return BlazeFace  # type: ignore[no-any-return]
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
