"""Write one twin's chunks into the dataset layout: per chunk its mel, its audio, its video with that audio, its
frames and its flow images.

The twin's video is decoded once (exact colours: these pixels are outputs) and only up to the last chunk's end;
each frame goes both to its JPEG and to its chunk's H.264 encoder. The chunk's 215 frames and 220500 samples come
from the ranges the preprocess recorded, so video, audio and mel of a chunk cover the same 10 s.
Every file written is recorded, so a twin that fails half-way leaves nothing behind (see `TwinWriter.discard`).
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipelines.base import BadInput, StageContext
from pipelines.media.frames import FrameWriter, read_frames, video_info
from pipelines.media.mux import mux_audio
from pipelines.media.wav import write_pcm16
from pipelines.perceptalign import outputs as files
from pipelines.perceptalign.bundle import ChunkBundle
from pipelines.perceptalign.layout import DatasetLayout, chunk_id
from pipelines.perceptalign.melspec import N_MELS, mel_columns

DECODE_BATCH = 16
AUDIO_BITRATE = "128k"
JPEG_THREADS = 2
MAX_PENDING_JPEGS = 64


@dataclass
class TwinWriter:
    """Writes the chunks of one twin (`twin`, in class `cls`) under `output_dir`."""

    output_dir: Path
    layout: DatasetLayout
    twin: str
    cls: str
    jpeg_quality: int
    written: list[str] = field(default_factory=list)

    def write(
        self,
        context: StageContext,
        video: Path,
        samples: np.ndarray,
        bundle: ChunkBundle,
        progress: Callable[[float], None],
    ) -> tuple[list[str], int]:
        """Write every chunk; returns the items (`{class}/{id}`, in chunk order) and the frames decoded."""
        ranges = [(int(a), int(b)) for a, b in bundle.chunk_frames]
        sample_ranges = [(int(a), int(b)) for a, b in bundle.chunk_samples]
        self._check(video, samples, bundle, ranges, sample_ranges)
        ids = [chunk_id(self.twin, index) for index in range(len(ranges))]
        end = ranges[-1][1]
        settings = self.layout.settings
        with tempfile.TemporaryDirectory(prefix="perceptalign-") as scratch, ThreadPoolExecutor(JPEG_THREADS) as pool:
            jpegs = JpegQueue(pool, self.jpeg_quality)
            silent = Path(scratch) / "silent.mp4"
            writer: FrameWriter | None = None
            chunk, frame = 0, 0
            try:
                for batch in read_frames(video, DECODE_BATCH):
                    for rgb in batch[: end - frame]:
                        start, stop = ranges[chunk]
                        if frame == start:
                            height, width = rgb.shape[:2]
                            writer = FrameWriter(silent, fps=settings.fps, width=width, height=height)
                            writer.open()
                        assert writer is not None  # NOTE: chunks tile [0, end) without gaps (checked in _check)
                        writer.write(rgb)
                        jpegs.put(self._path(self.layout.frame(self.cls, ids[chunk], frame - start + 1)), rgb)
                        frame += 1
                        if frame == stop:
                            writer.close()
                            writer = None
                            self._finish_chunk(chunk, ids[chunk], silent, samples, sample_ranges[chunk], bundle, jpegs)
                            chunk += 1
                    progress(frame / end)
                    context.check_cancelled()
                    if frame >= end:
                        break
            finally:
                if writer is not None:
                    writer.abort()
            jpegs.wait(0)
        if frame < end:
            raise BadInput(
                f"{files.VIDEO_MP4} of twin {self.twin} ended after {frame} frames, before the {end} its chunks "
                "need: run the twin's perceptalign preprocess again"
            )
        return [f"{self.cls}/{name}" for name in ids], frame

    def discard(self) -> None:
        """Delete what this twin wrote (it is being excluded)."""
        for relative in self.written:
            (self.output_dir / relative).unlink(missing_ok=True)
        self.written.clear()

    def _finish_chunk(
        self,
        index: int,
        name: str,
        silent: Path,
        samples: np.ndarray,
        sample_range: tuple[int, int],
        bundle: ChunkBundle,
        jpegs: JpegQueue,
    ) -> None:
        """The chunk's audio, its video with that audio, its mel and its flow images."""
        cls = self.cls
        settings = self.layout.settings
        audio = self._path(self.layout.audio(cls, name))
        write_pcm16(audio, samples[sample_range[0] : sample_range[1]], settings.sample_rate_hz)
        mux_audio(silent, audio, self._path(self.layout.video(cls, name)), audio_bitrate=AUDIO_BITRATE)
        np.save(self._path(self.layout.mel(cls, name)), np.ascontiguousarray(bundle.mel[index], dtype=np.float32))
        flow = bundle.flow(index)
        expected = settings.frames_per_chunk - 1
        if flow.ndim != 4 or flow.shape[:2] != (expected, 2) or flow.dtype != np.uint8:
            raise BadInput(
                f"{files.CHUNKS_NPZ} of twin {self.twin} holds flow of shape {flow.shape} ({flow.dtype}) for chunk "
                f"{index}, not ({expected}, 2, h, w) uint8: run the twin's perceptalign preprocess again"
            )
        for pair in range(expected):
            jpegs.put(self._path(self.layout.flow(cls, name, "x", pair + 1)), flow[pair, 0])
            jpegs.put(self._path(self.layout.flow(cls, name, "y", pair + 1)), flow[pair, 1])

    def _check(
        self,
        video: Path,
        samples: np.ndarray,
        bundle: ChunkBundle,
        ranges: list[tuple[int, int]],
        sample_ranges: list[tuple[int, int]],
    ) -> None:
        """The recorded ranges fit this video and audio and tile them in whole chunks; the mels have the shape."""
        settings = self.layout.settings
        frames = video_info(video).frames or 0
        size = settings.frames_per_chunk
        tiled = all(a == index * size and b - a == size for index, (a, b) in enumerate(ranges))
        sized = all(b - a == settings.samples_per_chunk for a, b in sample_ranges)
        mel_shape = (len(ranges), N_MELS, mel_columns(settings.samples_per_chunk))
        problems = []
        if not tiled or not sized:
            problems.append("its chunk ranges are not whole consecutive chunks")
        if ranges and ranges[-1][1] > frames:
            problems.append(f"its chunks need {ranges[-1][1]} frames but {files.VIDEO_MP4} has {frames}")
        if sample_ranges and sample_ranges[-1][1] > samples.size:
            problems.append(f"its chunks need {sample_ranges[-1][1]} samples but {files.AUDIO_WAV} has {samples.size}")
        if bundle.mel.shape != mel_shape or bundle.mel.dtype != np.float32:
            problems.append(f"its mel is {bundle.mel.shape} {bundle.mel.dtype}, not {mel_shape} float32")
        if problems:
            raise BadInput(
                f"the perceptalign preprocess of twin {self.twin} is inconsistent ({'; '.join(problems)}): "
                "run its preprocess again"
            )

    def _path(self, relative: str) -> Path:
        path = self.output_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        self.written.append(relative)
        return path


class JpegQueue:
    """JPEG encodes on a thread pool, overlapping the video decode and encode of the main thread (OpenCV releases
    the GIL). At most `MAX_PENDING_JPEGS` wait, which bounds the frames held in memory."""

    def __init__(self, pool: ThreadPoolExecutor, quality: int) -> None:
        self.pool, self.quality = pool, quality
        self.pending: deque[Future[None]] = deque()

    def put(self, path: Path, pixels: np.ndarray) -> None:
        """Queue RGB (H, W, 3) or grey (H, W) `pixels` for `path`; they must not change afterwards."""
        self.pending.append(self.pool.submit(_write_jpeg, path, pixels, self.quality))
        self.wait(MAX_PENDING_JPEGS)

    def wait(self, at_most: int) -> None:
        """Wait until at most `at_most` JPEGs are pending; the first failure is raised."""
        while len(self.pending) > at_most:
            self.pending.popleft().result()


def _write_jpeg(path: Path, pixels: np.ndarray, quality: int) -> None:
    """OpenCV's encoder gives the same bytes for the same pixels."""
    image = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if pixels.ndim == 3 else pixels
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path.name} as JPEG")
    path.write_bytes(encoded.tobytes())
