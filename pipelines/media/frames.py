"""Decode a video into batches of RGB frames, and encode RGB frames into an H.264 MP4, fast and reproducibly.

    read_frames(path)      (B, H, W, 3) uint8 RGB batches in display order, as a viewer sees them (upright)
    video_info(path)       frame count, fps and displayed size of a video, without decoding it
    FrameWriter(path, ...) RGB frames -> H.264 yuv420p MP4 at constant fps, written atomically

Both sides run on the preprocess hot path, so decoding is threaded and colour conversion stays in swscale (C).
Colour conversions run swscale in bit-exact mode and x264 uses a fixed thread count, so the same frames give
byte-identical MP4s on every run and machine: the platform skips stages whose inputs' checksums did not change.
Written files carry no metadata that varies (no creation time, no encoder string: muxer and encoder are bitexact),
are tagged BT.601 limited range (what they are, and what a reader assumes for untagged video anyway), and have
their index first (+faststart) so a browser can start playing them before the whole file arrives.

Errors:
    BadInput    the video to read is missing, empty, not a video, undecodable or truncated; the message names
                the file, the problem and the fix
    ValueError  a caller's mistake (odd frame size, frames of the wrong shape or type, no frame written)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from pipelines.base import BadInput
from pipelines.media.probe import VideoStreamInfo, probe

# x264's output depends on its thread count; a fixed one makes the encode the same on every machine.
X264_THREADS = 4
# Bit-exact swscale: its SIMD paths otherwise round differently from one CPU to another.
_TO_YUV_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT
# Full chroma interpolation on the way back: swscale's default YUV -> RGB path darkens by 1-2 levels.
_TO_RGB_FLAGS = _TO_YUV_FLAGS | Interpolation.FULL_CHR_H_INT
_FIX = "normalise the upload again or upload the original"


@dataclass(frozen=True)
class VideoInfo:
    """What a reader of the frames needs to know. `width`/`height` are the displayed (upright) size, as
    `read_frames` yields it; `frames` is the container's count (None when it does not say)."""

    path: Path
    frames: int | None
    fps: float
    width: int
    height: int
    stream: VideoStreamInfo


def video_info(path: Path) -> VideoInfo:
    """Frame count, fps and size of `path`'s video. BadInput for a missing, empty, unreadable or video-less file."""
    path = Path(path)
    stream = probe(path).video
    if stream is None:
        raise BadInput(f"{path.name!r} has no video stream; upload a video of the person")
    if not stream.decodable:
        raise BadInput(f"{path.name!r} has a video stream ({stream.codec}) but no frame of it decodes; {_FIX}")
    width, height = stream.display_size
    return VideoInfo(path=path, frames=stream.frames, fps=stream.fps or 0.0, width=width, height=height, stream=stream)


def read_frames(path: Path, batch_size: int = 16, *, exact_colour: bool = True) -> Iterator[np.ndarray]:
    """Yield `path`'s frames as (B, H, W, 3) uint8 RGB arrays of `batch_size` frames (the last one may be shorter).

    `exact_colour=False` uses swscale's default conversion instead of the bit-exact, full-chroma one (colours 1-2
    levels darker, may differ by a level between CPUs, half the time per frame): right for analysis such as
    landmark detection, wrong for pixels that end up in an output.

    Frames come in display order, turned upright when the file asks players to rotate them. BadInput (raised by
    the first `next`, or at the end for a truncated file) when the video is unreadable or ends before the frame
    count its index declares: a stage must not quietly work on half an upload.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    info = video_info(path)
    quarter_turns = info.stream.rotation_deg // 90
    flags = _TO_RGB_FLAGS if exact_colour else None  # None: swscale's default (fast, SIMD) conversion
    decoded = 0
    with av.open(str(info.path)) as container:
        stream = next(s for s in container.streams.video if s.index == info.stream.index)
        stream.thread_type = "AUTO"  # frame + slice threads: several hundred fps for 512x512 H.264
        batch: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24", interpolation=flags)
                if quarter_turns:
                    rgb = np.rot90(rgb, quarter_turns)  # counter-clockwise, as the display matrix asks
                if rgb.shape[:2] != (info.height, info.width):
                    raise BadInput(
                        f"{info.path.name!r} changes frame size at frame {decoded} (from {info.width}x{info.height} "
                        f"to {rgb.shape[1]}x{rgb.shape[0]}); {_FIX}"
                    )
                batch.append(rgb)
                decoded += 1
                if len(batch) == batch_size:
                    yield np.stack(batch)
                    batch = []
        except av.error.FFmpegError as exc:
            raise BadInput(f"{info.path.name!r} cannot be decoded after frame {decoded} ({exc}); {_FIX}") from exc
        if batch:
            yield np.stack(batch)
    if info.frames and decoded < info.frames:
        raise BadInput(
            f"{info.path.name!r} ends after {decoded} of the {info.frames} frames its index lists "
            f"(truncated upload or copy); {_FIX}"
        )


class FrameWriter:
    """Write RGB frames to an H.264 yuv420p MP4 at a constant `fps`; a context manager.

    The file appears at `path` only when the block ends without an exception (it is written beside it under a
    temporary name and renamed); on an exception nothing is left behind. `width` and `height` must be even
    (4:2:0 chroma is sampled per 2x2 pixels). `write` takes one (H, W, 3) frame or a (B, H, W, 3) batch.
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float | Fraction,
        width: int,
        height: int,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(
                f"cannot write {width}x{height} frames to {Path(path).name}: H.264 yuv420p needs a positive, even "
                "width and height; crop or pad the frames to an even size"
            )
        if fps <= 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001000)
        self.width, self.height = width, height
        self.crf, self.preset = crf, preset
        self.frames_written = 0
        self._partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None

    def __enter__(self) -> FrameWriter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Start the temporary file (called by `with`)."""
        if self._container is not None:
            raise RuntimeError(f"{self.path.name} is already open")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(self._partial), mode="w", format="mp4", options={"movflags": "+faststart", "fflags": "+bitexact"}
        )
        try:
            options = {"crf": str(self.crf), "preset": self.preset}
            stream = container.add_stream("libx264", rate=self.fps, options=options)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            context = stream.codec_context
            context.time_base = 1 / self.fps
            context.thread_count = X264_THREADS
            context.thread_type = "FRAME"  # x264's own default; sliced threads would change the bitstream's shape
            context.flags |= av.codec.context.Flags.bitexact
            context.colorspace = int(Colorspace.ITU601)
            context.color_range = int(ColorRange.MPEG)
        except BaseException:
            container.close()
            self._partial.unlink(missing_ok=True)
            raise
        self._container, self._stream = container, stream

    def write(self, frames: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame or a (B, H, W, 3) batch."""
        if self._container is None or self._stream is None:
            raise RuntimeError(f"{self.path.name} is not open: use `with FrameWriter(...) as writer`")
        batch = frames[None] if frames.ndim == 3 else frames
        if batch.ndim != 4 or batch.shape[1:] != (self.height, self.width, 3) or batch.dtype != np.uint8:
            raise ValueError(
                f"{self.path.name} takes uint8 RGB frames of shape ({self.height}, {self.width}, 3), "
                f"not {frames.dtype} {frames.shape}"
            )
        for rgb in batch:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(
                format="yuv420p",
                interpolation=_TO_YUV_FLAGS,
                dst_colorspace=Colorspace.ITU601,
                dst_color_range=ColorRange.MPEG,
            )
            frame.pts = self.frames_written
            frame.time_base = 1 / self.fps
            self._container.mux(self._stream.encode(frame))
            self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file to `path` (called by `with` on success)."""
        if self._container is None or self._stream is None:
            return
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"no frame was written to {self.path.name}; an MP4 without frames is not a video")
        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()
            self._container = None
            os.replace(self._partial, self.path)
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop writing and delete the temporary file (called by `with` on an exception)."""
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            try:
                container.close()
            except av.error.FFmpegError:
                pass  # NOTE: the file is deleted next; an error closing it changes nothing
        self._partial.unlink(missing_ok=True)
