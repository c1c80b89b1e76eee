"""SHA-256 of file contents, streamed in fixed-size chunks so memory stays flat for multi-GB files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

from twinplatform.storage.base import ByteProgress

#: 1 MiB: large enough that per-call overhead vanishes, small enough to stay in CPU cache
DEFAULT_CHUNK_BYTES = 1024 * 1024


def sha256_file(path: Path, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> str:
    """Lowercase hex SHA-256 of the file at `path`. Raises OSError if it cannot be read."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk_bytes)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


class ReadableInto(Protocol):
    def readinto(self, buffer: Any, /) -> int | None: ...


class Writable(Protocol):
    def write(self, data: memoryview, /) -> int | None: ...


def copy_with_sha256(
    source: ReadableInto,
    target: Writable,
    *,
    progress: ByteProgress | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[str, int]:
    """Copy `source` to `target` from their current positions; return (hex SHA-256, bytes copied).

    Hashing while copying reads the data once, and the digest describes exactly the bytes written,
    even if the source changes underneath. `progress` gets the byte count of every chunk.
    """
    digest = hashlib.sha256()
    total = 0
    buffer = bytearray(chunk_bytes)
    view = memoryview(buffer)
    while count := source.readinto(buffer):
        chunk = view[:count]
        digest.update(chunk)
        target.write(chunk)
        total += count
        if progress is not None:
            progress(count)
    return digest.hexdigest(), total
