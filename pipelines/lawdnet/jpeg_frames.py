"""A video's first frames as numbered JPEGs, the way DINet's training_data keeps frames ({i:06d}.jpg)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pipelines.base import BadInput
from pipelines.media.frames import read_frames

BATCH_FRAMES = 32


def write_jpegs(
    video: Path, folder: Path, frames: int, quality: int, *, name: str, on_batch: Callable[[int], None]
) -> int:
    """Write frames 0..frames-1 of `video` as folder/{i:06d}.jpg (exact colours; OpenCV's JPEG encoder, so the
    same frames give the same bytes); returns the frames decoded. `on_batch(written)` runs after each batch
    (progress, cancellation). BadInput naming `name` when the video is shorter."""
    folder.mkdir(parents=True, exist_ok=True)
    options = [cv2.IMWRITE_JPEG_QUALITY, quality]
    written = decoded = 0
    try:
        for batch in read_frames(video, BATCH_FRAMES):
            decoded += len(batch)
            for frame in batch[: frames - written]:
                ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[:, :, ::-1]), options)
                if not ok:
                    raise RuntimeError(f"OpenCV could not encode frame {written} of {name} as JPEG")
                (folder / f"{written:06d}.jpg").write_bytes(data.tobytes())
                written += 1
            on_batch(written)
    except BadInput as exc:
        raise BadInput(f"{name} is broken ({exc}): run the twin's lawdnet preprocess again") from exc
    if written < frames:
        raise BadInput(
            f"{name} holds {written} frames but its timeline {frames}: run the twin's lawdnet preprocess again"
        )
    return decoded
