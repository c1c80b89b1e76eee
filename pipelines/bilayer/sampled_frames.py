"""Decode every frame of a video but turn only every n-th one into RGB: the frames stage keeps one frame in 25.

`pipelines.media.frames.read_frames` converts every decoded frame to RGB; with exact colour that conversion costs
about four times the decode itself (550 frames of 576x768: 0.4 s decoding, 2.2 s decoding and converting), and
the frames stage would throw 24 of every 25 conversions away. H.264 must still decode every frame (each depends on
the ones before), so this reader decodes all of them and converts only the kept ones, with the same bit-exact,
full-chroma conversion as `read_frames(exact_colour=True)` (a test checks the frames are byte-identical).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

from pipelines.base import BadInput
from pipelines.media.frames import video_info

# The flags of read_frames(exact_colour=True): bit-exact swscale with full chroma interpolation.
EXACT_RGB = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT | Interpolation.FULL_CHR_H_INT
_FIX = "run the twin's preprocess again"


class SampledFrames:
    """Iterate over (frame index, (H, W, 3) uint8 RGB frame) for frames 0, every, 2 * every, ... of `path`.

    After the iteration `decoded` holds how many frames were decoded. BadInput (naming the file) when the video is
    unreadable, changes size, or ends before the frame count its index lists."""

    def __init__(self, path: Path, every: int, name: str) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self.path, self.every, self.name = Path(path), every, name
        self.decoded = 0

    def __iter__(self) -> Generator[tuple[int, np.ndarray], None, None]:
        info = video_info(self.path)
        quarter_turns = info.stream.rotation_deg // 90
        self.decoded = 0
        with av.open(str(self.path)) as container:
            stream = next(s for s in container.streams.video if s.index == info.stream.index)
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    index = self.decoded
                    self.decoded += 1
                    if index % self.every:
                        continue
                    rgb = frame.to_ndarray(format="rgb24", interpolation=EXACT_RGB)
                    if quarter_turns:
                        rgb = np.ascontiguousarray(np.rot90(rgb, quarter_turns))
                    if rgb.shape[:2] != (info.height, info.width):
                        raise BadInput(
                            f"{self.name} changes frame size at frame {index} (from {info.width}x{info.height} to "
                            f"{rgb.shape[1]}x{rgb.shape[0]}); {_FIX}"
                        )
                    yield index, rgb
            except av.error.FFmpegError as exc:
                raise BadInput(f"{self.name} cannot be decoded after frame {self.decoded} ({exc}); {_FIX}") from exc
        if info.frames and self.decoded < info.frames:
            raise BadInput(f"{self.name} ends after {self.decoded} of the {info.frames} frames its index lists; {_FIX}")
