"""Atomic, durable local file writes: a temp file beside the target becomes the target in one rename.

Recipe (crash-consistency literature, e.g. Pillai et al., OSDI '14): write a temp file in the target's
own folder (same filesystem, so the rename is atomic), flush and fsync it, `os.replace` it over the target
(or `os.link` it for create-only, which fails if the target exists), then fsync the folder so the rename
itself survives a power cut. A crash at any point leaves either the old target or the new one, never a
partial file under the final name; a failed write removes its temp file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

#: every temp file starts with this; keys may not (see keys.py), so temp files never look like objects
TEMP_PREFIX = ".twinplatform-tmp-"


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFile:
    """A temp file beside `target` that becomes `target` only when `commit` is called.

    Use as a context manager; `file` is open for binary read/write. Leaving the block without a commit
    (an exception, a failed verification) deletes the temp file. The target's folder must exist.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self._committed = False
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=".part")
        self.path = Path(name)
        try:
            self.file: BinaryIO = os.fdopen(fd, "w+b")
        except BaseException:
            os.close(fd)
            self.path.unlink()
            raise

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.file.close()
        if not self._committed:
            self.path.unlink(missing_ok=True)

    def sync(self) -> None:
        """Flush Python's buffer and the OS cache for the temp file to disk."""
        self.file.flush()
        os.fsync(self.file.fileno())

    def commit(self, *, overwrite: bool = True) -> None:
        """Publish the temp file under `target`.

        With `overwrite=False` the publish is create-only and race-free (`os.link` refuses an existing
        name): FileExistsError is raised and the temp file is discarded on exit.
        """
        self.sync()
        self.file.close()
        if overwrite:
            os.replace(self.path, self.target)
        else:
            os.link(self.path, self.target)
            self.path.unlink()
        self._committed = True
        fsync_dir(self.target.parent)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    """Replace `target` with `data` atomically and durably (the target's folder must exist)."""
    with AtomicFile(target) as atomic:
        atomic.file.write(data)
        atomic.commit()
