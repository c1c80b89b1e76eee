"""Inter-process file locks (`fcntl.flock`) that survive their lock file being deleted by the last holder.

`flock` locks belong to an open file description, so two threads that each open the lock file exclude each
other just like two processes do, and the kernel drops the lock when its holder dies (no stale locks after
a crash). POSIX only; the platform's workers run on Linux.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from twinplatform.errors import TransientError

_FIRST_POLL_S = 0.01
_MAX_POLL_S = 0.5


class HeldLock:
    """A lock held on `path` (released when the `file_lock` block ends)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def unlink(self) -> None:
        """Delete the lock file while still holding it.

        Safe because every acquirer re-checks, after locking, that the file it locked is still the one at
        `path` (see `file_lock`); waiters on the deleted file retry on a fresh one.
        """
        self.path.unlink(missing_ok=True)


def _acquire(fd: int, operation: int, path: Path, deadline: float | None, timeout_s: float | None) -> None:
    if deadline is None:
        fcntl.flock(fd, operation)
        return
    poll_s = _FIRST_POLL_S
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TransientError(
                    f"timed out after {timeout_s} s waiting for the lock {path}: another process is still "
                    "working on this file; retry later"
                ) from None
            time.sleep(poll_s)
            poll_s = min(poll_s * 2, _MAX_POLL_S)


@contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout_s: float | None = None) -> Iterator[HeldLock]:
    """Hold an exclusive (or shared) flock on `path`, creating the file (not its folder) if needed.

    Waits forever when `timeout_s` is None, else raises TransientError after `timeout_s` seconds.
    """
    operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _acquire(fd, operation, path, deadline, timeout_s)
            # NOTE: the previous holder may have unlinked the file while we waited; then we hold a lock on
            # an orphaned inode that nobody else will ever open, so it guards nothing: start over.
            locked = os.fstat(fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_ino, current.st_dev) == (locked.st_ino, locked.st_dev):
            break
        os.close(fd)
    try:
        yield HeldLock(path, fd)
    finally:
        # closing the last descriptor releases the flock
        os.close(fd)
