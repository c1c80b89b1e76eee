"""The render loop both engines share: for each output frame, crop the twin's own frame, let the engine's warper
move the face to the driving landmarks, paste the result back, encode; then mux with the speech.

An engine only supplies a `Warper`: given a batch of aligned crops of the twin's frames, their landmarks and the
driving landmarks (all in crop pixels), return the warped crops. Everything else (which frame, crop transforms,
paste-back with a feathered edge, H.264 + AAC at 25 fps, one frame per 1/25 s of audio) is here, so the two
engines are interchangeable per stage.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from pipelines.base import BadInput, StageContext
from pipelines.media.frames import FrameWriter, read_frames
from pipelines.media.mux import mux_audio
from pipelines.th import outputs as files
from pipelines.th.face.align import CropTransforms, crop, load_transforms, paste_back
from pipelines.th.face.landmarks_file import load_landmarks

MAX_FRAMES_IN_MEMORY_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class WarpBatch:
    """B output frames. Points are (68,2) per frame in the pixels of a `size` x `size` crop."""

    crops: np.ndarray  # (B,S,S,3) uint8: aligned crops of the twin's frames these outputs are built on
    source_points: np.ndarray  # (B,68,2) the landmarks of those frames
    driving_points: np.ndarray  # (B,68,2) where the landmarks must go
    output_indices: np.ndarray  # (B,) output frame numbers (for engines with temporal state)


class Warper(Protocol):
    size: int  # crop size the warper works at

    def warp(self, batch: WarpBatch) -> np.ndarray:
        """(B,S,S,3) uint8 warped crops."""
        ...


def to_crop_points(points: np.ndarray, pixel_transforms: np.ndarray) -> np.ndarray:
    """(N,68,2) frame pixels -> crop pixels with per-frame (N,2,3) transforms."""
    homogeneous = np.concatenate([points, np.ones(points.shape[:-1] + (1,), dtype=points.dtype)], axis=-1)
    return np.asarray(np.einsum("nij,nkj->nki", pixel_transforms, homogeneous), dtype=np.float32)


def load_frames(video: Path) -> np.ndarray:
    """The twin's whole normalised video in memory (ping-pong needs random access); refused when too large."""
    frames = np.concatenate(list(read_frames(video, 64)))
    if frames.nbytes > MAX_FRAMES_IN_MEMORY_BYTES:
        raise BadInput(f"the twin's video is {frames.nbytes / 1e9:.1f} GB decoded: use a shorter clip (under a minute)")
    return frames


def render(
    *,
    frames: np.ndarray,
    transforms: CropTransforms,
    twin_points: np.ndarray,
    driving_points: np.ndarray,
    source_frames: np.ndarray,
    warper: Warper,
    audio: Path,
    output: Path,
    fps: float,
    batch_size: int = 8,
    progress: Callable[[float, str], None] | None = None,
) -> int:
    """Render len(driving_points) frames into `output` (MP4 with `audio`); returns the frame count."""
    count = len(driving_points)
    if len(source_frames) != count:
        raise ValueError("one source frame per driving frame")
    if len(transforms) != len(frames) or len(twin_points) != len(frames):
        raise BadInput("the twin's video, crops and landmarks disagree on the frame count: run preprocess again")
    size = warper.size
    pixel = transforms.for_size(size)
    report = progress or (lambda fraction, message: None)
    height, width = frames.shape[1:3]
    with tempfile.TemporaryDirectory(dir=output.parent) as scratch:
        silent = Path(scratch) / "silent.mp4"
        with FrameWriter(silent, fps=fps, width=width, height=height) as writer:
            for start in range(0, count, batch_size):
                indices = np.arange(start, min(count, start + batch_size))
                sources = source_frames[indices]
                batch = WarpBatch(
                    crops=np.stack([crop(frames[f], transforms.unit[f], size) for f in sources]),
                    source_points=to_crop_points(twin_points[sources], pixel[sources]),
                    driving_points=to_crop_points(driving_points[indices], pixel[sources]),
                    output_indices=indices,
                )
                warped = warper.warp(batch)
                for offset, f in enumerate(sources):
                    writer.write(paste_back(frames[f], warped[offset], transforms.unit[f]))
                report(min(0.95, (start + len(indices)) / count), f"rendered {start + len(indices)} of {count} frames")
        mux_audio(silent, audio, output)
    return count


def render_stage(context: StageContext, warper: Warper, *, fps: float, output: str, batch_size: int) -> int:
    """The render stage's work for any engine: the twin's preprocess outputs and this run's driving file in,
    `output` (the MP4) out; the engine only chooses the warper. Returns the frame count."""
    inputs = context.inputs
    needed = (
        ("video", files.VIDEO_MP4),
        ("video_transforms", files.VIDEO_TRANSFORMS),
        ("video_landmarks", files.VIDEO_LANDMARKS),
    )
    for name, what in needed:
        if name not in inputs:
            raise BadInput(f"the twin has no {what}: run `platform run --task preprocess` with a video first")
    with np.load(inputs["driving"], allow_pickle=False) as driving:
        driving_points, sources = driving["landmarks"], driving["source_frames"]
    twin = load_landmarks(inputs["video_landmarks"])

    def report(fraction: float, message: str) -> None:
        context.progress(fraction, message)
        context.check_cancelled()

    return render(
        frames=load_frames(inputs["video"]),
        transforms=load_transforms(inputs["video_transforms"]),
        twin_points=twin.points,
        driving_points=driving_points,
        source_frames=sources,
        warper=warper,
        audio=inputs["audio"],
        output=context.output_path(output),
        fps=fps,
        batch_size=batch_size,
        progress=report,
    )
