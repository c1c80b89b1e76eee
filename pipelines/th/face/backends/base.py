"""What every landmark backend offers: faces with 68 iBUG points for a batch of consecutive frames of one video.

A backend may keep state between calls (a tracker, the last scores) so that a video can be fed in batches;
`reset()` says the next frames belong to a new video or photo. Backends hold native resources (a MediaPipe graph,
torch models), hence `close()` and the context-manager form.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, TypeVar

import numpy as np

from pipelines.th.face.types import FrameFaces

DEFAULT_MAX_FACES = 2
"""Two, not one: the caller must see a second person in view to refuse or warn, not silently follow one face."""


class LandmarkBackend(Protocol):
    """Finds up to `max_faces` faces per frame, each as a `FaceDetection` (68 iBUG points in frame pixels, a
    confidence in 0..1 whose meaning the backend documents, and a box)."""

    name: str

    def detect(self, frames: Sequence[np.ndarray]) -> list[FrameFaces]:
        """One `FrameFaces` per frame. `frames` are RGB uint8 (H, W, 3) arrays: consecutive frames of one video,
        continuing the frames of the previous call unless `reset()` came between."""
        ...

    def reset(self) -> None:
        """Forget what was tracked: the next frames start a new video or image."""
        ...

    def close(self) -> None:
        """Release the models; the backend cannot be used afterwards. Calling it twice is harmless."""
        ...

    def __enter__(self) -> LandmarkBackend: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


_Backend = TypeVar("_Backend", bound="ClosingBackend")


class ClosingBackend:
    """Context-manager plumbing shared by the concrete backends: leaving the `with` block closes the backend."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Backend) -> _Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_frame(frame: np.ndarray, index: int) -> np.ndarray:
    """`frame` as a C-contiguous RGB uint8 (H, W, 3) array; a ValueError names the frame otherwise.

    A wrong frame is the caller's bug (decoding gives RGB uint8), so this is a ValueError, not BadInput.
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise ValueError(f"frame {index} must be an RGB uint8 array of shape (H, W, 3), got {dtype} {shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame {index} is empty: shape {frame.shape}")
    return np.ascontiguousarray(frame)
