"""The chunks bundle: `chunks.npz` (arrays) and `chunks.json` (what a person reads), written and read here.

`chunks.npz` members:
    mel            (C, 80, T) float32   SpecVQGAN mel of each chunk's audio, in [0, 1]
    chunk_frames   (C, 2) int64         [start, stop) video frames of each chunk in video/video.mp4
    chunk_samples  (C, 2) int64         [start, stop) samples of each chunk in chunks/audio.wav
    flow_0000 ...  (F - 1, 2, h, w) uint8, one member per chunk: x and y flow of each consecutive frame pair
    format_version ()  int32

Flow is one member per chunk so a reader loads one chunk at a time (a long recording's flow is gigabytes).
This writer adds members one at a time (numpy's `savez` needs them all in memory at once), deflated, with a fixed
ZIP timestamp, so the same arrays give the same bytes and the platform can skip work whose inputs did not change.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import BadInput
from pipelines.perceptalign.outputs import CHUNKS_JSON, CHUNKS_NPZ, FORMAT_VERSION

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FIX = "run the twin's perceptalign preprocess again"


def flow_member(chunk: int) -> str:
    return f"flow_{chunk:04d}"


class NpzWriter:
    """Write arrays one by one into an .npz (deflated, fixed timestamps); the file appears when `close` runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}.partial")
        self._zip = zipfile.ZipFile(self._partial, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, name: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
        info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
        info.external_attr = 0o644 << 16
        # NOTE: zlib's default level 6 makes 10 s of flow 2.5 MB instead of 4.5 MB at level 1, for 0.5 s more per
        # chunk: a tenth of the time its flow takes to compute, and every later download is smaller
        self._zip.writestr(info, buffer.getbuffer(), compress_type=zipfile.ZIP_DEFLATED)

    def close(self) -> None:
        self._zip.close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        self._zip.close()
        self._partial.unlink(missing_ok=True)


@contextmanager
def npz_writer(path: Path) -> Iterator[NpzWriter]:
    writer = NpzWriter(path)
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
    writer.close()


def write_summary(path: Path, summary: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


@dataclass
class ChunkBundle:
    """One twin's chunks, opened for reading; a context manager (the npz stays open while flow is read)."""

    summary: dict[str, Any]
    mel: np.ndarray
    chunk_frames: np.ndarray
    chunk_samples: np.ndarray
    _npz: Any

    @property
    def chunks(self) -> int:
        return int(self.chunk_frames.shape[0])

    def flow(self, chunk: int) -> np.ndarray:
        """(F - 1, 2, h, w) uint8 flow images of chunk `chunk`."""
        try:
            flow: np.ndarray = self._npz[flow_member(chunk)]
        except (KeyError, ValueError, OSError) as exc:
            raise BadInput(f"{CHUNKS_NPZ} lacks the flow of chunk {chunk} ({exc}): {_FIX}") from exc
        return flow

    def __enter__(self) -> ChunkBundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self._npz.close()


def open_bundle(npz_path: Path, json_path: Path) -> ChunkBundle:
    """Read a twin's chunks.json and chunks.npz; BadInput naming the file when either is unreadable or stale."""
    try:
        summary = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{CHUNKS_JSON} is not readable JSON ({exc}): {_FIX}") from exc
    if not isinstance(summary, dict) or summary.get("format_version") != FORMAT_VERSION:
        raise BadInput(f"{CHUNKS_JSON} is not format {FORMAT_VERSION} of this model's chunk summary: {_FIX}")
    try:
        npz = np.load(npz_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{CHUNKS_NPZ} is not a readable .npz file ({exc}): {_FIX}") from exc
    try:
        if int(npz["format_version"]) != FORMAT_VERSION:
            raise BadInput(f"{CHUNKS_NPZ} is not format {FORMAT_VERSION}: {_FIX}")
        mel, frames, samples = npz["mel"], npz["chunk_frames"], npz["chunk_samples"]
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        npz.close()
        raise BadInput(f"{CHUNKS_NPZ} lacks its arrays ({exc}): {_FIX}") from exc
    if not (mel.shape[0] == frames.shape[0] == samples.shape[0] == summary.get("chunks")):
        npz.close()
        raise BadInput(
            f"{CHUNKS_NPZ} and {CHUNKS_JSON} disagree on the number of chunks ({mel.shape[0]} mel, "
            f"{frames.shape[0]} frame ranges, {summary.get('chunks')} in the summary): {_FIX}"
        )
    return ChunkBundle(summary=summary, mel=mel, chunk_frames=frames, chunk_samples=samples, _npz=npz)
