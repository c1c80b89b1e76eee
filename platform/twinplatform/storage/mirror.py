"""A worker's local mirror of store keys: `fetch` downloads a key only if the local copy is missing or stale.

"Stale" is decided by content, never by size or timestamps alone (the `aws s3 sync` trap): the local file's
SHA-256 must equal the expected one (given by the caller, e.g. from a manifest, or the store's recorded one).
Hashing a multi-GB file on every fetch would be wasteful, so the local SHA-256 is cached in a record keyed by
the file's (size, mtime_ns) and trusted while those match, except for files modified within
`RACY_WINDOW_NS` of the record being written, whose mtime cannot prove they were not edited right after
("racy git" problem): those are re-hashed once, later. Downloads get the object's modification time (as
`aws s3 sync` does), which lies safely in the past, so their records are trusted at once.

Bookkeeping lives in `state_dir`, outside the tree users browse (e.g. ROOT/.twinplatform-mirror):

    state_dir/checksums/<hh>/<sha256 of the local path>.json   cached checksum records
    state_dir/locks/<hh>/<sha256 of the local path>.lock       per-file flock: one download per host

Downloads are atomic (the backend's get_file writes a temp file and renames it) and run under the file's
lock, so of two processes fetching the same key one downloads and the other waits, then finds it present.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from twinplatform.errors import AssetNotFound, ChecksumMismatch, InputError
from twinplatform.storage.atomic import TEMP_PREFIX, write_bytes_atomic
from twinplatform.storage.base import ObjectInfo, StorageBackend
from twinplatform.storage.checksum import sha256_file
from twinplatform.storage.keys import validate_key
from twinplatform.storage.locking import HeldLock, file_lock

#: a file modified this close to (or after) its record was written may have changed within one mtime tick
#: (Linux local filesystems tick every few ms at most; coarser filesystems need a larger window)
RACY_WINDOW_NS = 100_000_000
#: temp files untouched this long are leftovers of a killed download, not one in progress
STALE_TEMP_S = 3600.0


def _settle_mtime(path: Path, modified_at: datetime | None) -> None:
    """Stamp a fresh download with the object's modification time, and in any case a time before the
    racy window, so any later edit moves its mtime away from the one recorded."""
    latest_ns = time.time_ns() - 2 * RACY_WINDOW_NS
    mtime_ns = latest_ns if modified_at is None else min(int(modified_at.timestamp() * 1e9), latest_ns)
    os.utime(path, ns=(os.stat(path).st_atime_ns, mtime_ns))


@dataclass(frozen=True)
class FetchResult:
    path: Path
    downloaded: bool


@dataclass(frozen=True)
class _Record:
    size_bytes: int
    mtime_ns: int
    sha256: str
    recorded_at_ns: int


class MirrorCache:
    """Verified local copies of store keys at `path_for_key(key)`, bookkeeping under `state_dir`.

    `lock_timeout_s`: how long `fetch`/`remove` wait for another process working on the same file before
    raising TransientError (None waits forever).
    """

    def __init__(
        self,
        backend: StorageBackend,
        path_for_key: Callable[[str], Path],
        state_dir: Path,
        *,
        lock_timeout_s: float | None = 3600.0,
    ) -> None:
        self.backend = backend
        self._path_for_key = path_for_key
        self.state_dir = Path(os.path.abspath(state_dir))
        self._lock_timeout_s = lock_timeout_s

    # -- bookkeeping ---------------------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """Where `key` is mirrored (absolute)."""
        return Path(os.path.abspath(self._path_for_key(validate_key(key))))

    def _state_path(self, kind: str, path: Path, suffix: str) -> Path:
        digest = hashlib.sha256(os.fsencode(path)).hexdigest()
        return self.state_dir / kind / digest[:2] / f"{digest}{suffix}"

    def _load_record(self, path: Path) -> _Record | None:
        try:
            data = json.loads(self._state_path("checksums", path, ".json").read_text(encoding="utf-8"))
            if data["path"] != str(path):
                return None
            return _Record(data["size_bytes"], data["mtime_ns"], data["sha256"], data["recorded_at_ns"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):  # unreadable (e.g. torn by a crash): re-hash instead
            return None

    def _save_record(self, path: Path, status: os.stat_result, sha256: str) -> None:
        record_path = self._state_path("checksums", path, ".json")
        record_path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "path": str(path),
            "size_bytes": status.st_size,
            "mtime_ns": status.st_mtime_ns,
            "sha256": sha256,
            "recorded_at_ns": time.time_ns(),
        }
        write_bytes_atomic(record_path, json.dumps(data).encode("utf-8"))

    def _forget(self, path: Path) -> None:
        self._state_path("checksums", path, ".json").unlink(missing_ok=True)

    def _lock(self, path: Path) -> AbstractContextManager[HeldLock]:
        lock_path = self._state_path("locks", path, ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return file_lock(lock_path, timeout_s=self._lock_timeout_s)

    def local_checksum(self, path: Path) -> str | None:
        """SHA-256 of the local file at `path` (None if absent), from the record when it can be trusted."""
        try:
            before = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(before.st_mode):
            return None
        record = self._load_record(path)
        if (
            record is not None
            and record.size_bytes == before.st_size
            and record.mtime_ns == before.st_mtime_ns
            and before.st_mtime_ns + RACY_WINDOW_NS < record.recorded_at_ns
        ):
            return record.sha256
        checksum = sha256_file(path)
        after = os.stat(path)
        # record only if nothing changed while hashing (same file, same size, same mtime)
        if (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino,
            before.st_size,
            before.st_mtime_ns,
        ):
            self._save_record(path, after, checksum)
        return checksum

    # -- public operations ---------------------------------------------------------------------------------

    def fetch(self, key: str, expected_checksum: str | None = None) -> FetchResult:
        """Make `path(key)` hold the object's bytes; download only if missing or different.

        `expected_checksum` (hex SHA-256, e.g. from a manifest) is what the local copy must hash to; when
        None, the store's recorded checksum (one HEAD request) is used, and an object without one is
        downloaded every time. Raises AssetNotFound if the key is not in the store, ChecksumMismatch if the
        store holds different bytes than `expected_checksum` (nothing is downloaded then), TransientError
        if another process holds the file's lock longer than `lock_timeout_s`.
        """
        path = self.path(key)
        expected = expected_checksum.lower() if expected_checksum is not None else None
        if expected is None:
            expected = self._store_info(key).checksum
        if expected is not None and self.local_checksum(path) == expected:
            return FetchResult(path, downloaded=False)
        with self._lock(path):
            # another process may have downloaded it while we waited for the lock
            if expected is not None and self.local_checksum(path) == expected:
                return FetchResult(path, downloaded=False)
            if expected_checksum is not None:
                stored = self._store_info(key).checksum
                if stored is not None and stored != expected:
                    raise ChecksumMismatch(
                        f"object {key!r} in {self.backend.url} has sha256 {stored} but {expected} was "
                        "expected: the object was replaced in the store, or the record (manifest) you fetch "
                        "from is stale"
                    )
            path.parent.mkdir(parents=True, exist_ok=True)
            got = self.backend.get_file(key, path)
            actual = got.checksum if got.checksum is not None else sha256_file(path)
            if expected_checksum is not None and actual != expected:
                # replaced between our HEAD and the download, or the store had no checksum to compare first
                path.unlink(missing_ok=True)
                self._forget(path)
                raise ChecksumMismatch(
                    f"object {key!r} downloaded from {self.backend.url} has sha256 {actual} but {expected} "
                    f"was expected; the local copy {path} was removed"
                )
            _settle_mtime(path, got.modified_at)
            self._save_record(path, os.stat(path), actual)
        return FetchResult(path, downloaded=True)

    def _store_info(self, key: str) -> ObjectInfo:
        info = self.backend.head(key)
        if info is None:
            raise AssetNotFound(f"object {key!r} does not exist in {self.backend.url}: nothing to fetch")
        return info

    def remove(self, key: str) -> bool:
        """Delete the local copy of `key` and its bookkeeping; True if a file was there."""
        return self._remove_file(self.path(key))

    def _remove_file(self, path: Path) -> bool:
        with self._lock(path) as lock:
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                removed = False
            except IsADirectoryError as exc:
                raise InputError(f"{path} is a folder, not a mirrored file: use remove_tree") from exc
            self._forget(path)
            lock.unlink()
        return removed

    def remove_tree(self, directory: Path) -> list[Path]:
        """Delete every mirrored file under `directory`, then the folders left empty; return removed files.

        Each file is removed under its lock, so a fetch in progress for it finishes first. Temp files of
        downloads killed long ago (older than STALE_TEMP_S) go too; the state folder is never touched.
        """
        root = Path(os.path.abspath(directory))
        if root == self.state_dir or self.state_dir in root.parents:
            raise InputError(f"{root} is inside the mirror's state folder, not a mirrored tree")
        removed: list[Path] = []
        now = time.time()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [name for name in dirnames if Path(dirpath, name) != self.state_dir]
            for name in filenames:
                file = Path(dirpath, name)
                if name.startswith(TEMP_PREFIX):
                    try:
                        if now - file.stat().st_mtime > STALE_TEMP_S:
                            file.unlink()
                    except FileNotFoundError:  # finished (renamed) or cleaned up meanwhile
                        continue
                elif self._remove_file(file):
                    removed.append(file)
        for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
            folder = Path(dirpath)
            if folder == self.state_dir or self.state_dir in folder.parents:
                continue
            try:
                folder.rmdir()
            except OSError as exc:
                # still holds the state folder, a download in progress, or a file created meanwhile
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    raise
        return sorted(removed)
