"""The one narrow I/O seam to object stores: the `StorageBackend` protocol and `ObjectInfo`.

Contract every backend honours (tests/contract/test_storage_backend.py runs it against each):
- keys are POSIX-style strings built by `storage_layout` ("raw/alice/video/clip.mp4"); never a leading "/";
- `put_file` computes the file's SHA-256, stores it with the object, and returns it in `ObjectInfo.checksum`;
  with `overwrite=False` it raises `AlreadyExists` instead of replacing an object;
- `get_file` writes atomically (temp file in the target folder, fsync, rename) and verifies the SHA-256 recorded
  at upload; a mismatch raises `ChecksumMismatch` and leaves no file at the target;
- a missing key raises `AssetNotFound`; network trouble raises `TransientError`; a missing bucket or bad
  credentials raise `ConfigError`. Third-party errors never escape.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

#: called with the number of bytes transferred since the last call
ByteProgress = Callable[[int], None]


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size_bytes: int
    checksum: str | None  # lowercase hex SHA-256 recorded at upload; None for objects written by other tools
    modified_at: datetime | None = None


@runtime_checkable
class StorageBackend(Protocol):
    #: the store URL with any secret removed (file:///..., s3://bucket/prefix)
    url: str

    def check_access(self) -> None:
        """Raise ConfigError naming the problem when the store cannot be used (missing bucket, no permission)."""

    def put_file(
        self, local_path: Path, key: str, *, overwrite: bool = True, progress: ByteProgress | None = None
    ) -> ObjectInfo: ...

    def get_file(self, key: str, local_path: Path, *, progress: ByteProgress | None = None) -> ObjectInfo: ...

    def head(self, key: str) -> ObjectInfo | None:
        """Info for `key`, or None if it does not exist."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""

    def copy(self, source_key: str, target_key: str) -> ObjectInfo:
        """Server-side copy (checksum kept); replaces the target."""

    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> builtins.list[str]:  # `list` is a method name here
        """Delete every object under `prefix`; return the keys removed."""
