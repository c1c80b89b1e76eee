"""The file:// backend: a folder laid out exactly like the bucket, each key a file under the root.

Layout of a store rooted at ROOT:

    ROOT/<key>                              the object's bytes, nothing else in the key tree
    ROOT/.twinplatform/checksums/<key>      its SHA-256 (hex) recorded at upload
    ROOT/.twinplatform/lock                 the store lock (see below); never deleted

Writes go to a temp file beside the target (AtomicFile), so a crash never leaves a partial object. The short
"publish" step (write the checksum, rename the data into place) runs under an exclusive `flock` on the store
lock, and readers take it shared while they open the data file and read its checksum, so a reader always
sees a matching (bytes, checksum) pair even while a writer replaces the object: the renamed-over file stays
readable through the already open descriptor. Copying bytes happens outside the lock.

The checksum is written just before the data is renamed into place, so a crash between the two leaves either
an orphaned checksum (invisible: objects exist when their data file does; the next put replaces it) or, when
replacing, the old bytes with the new checksum, which reads as ChecksumMismatch rather than as wrong data.

A folder cannot be both a file and a directory: a store holding "a" cannot also hold "a/b" (S3 can), and
such a put raises InputError.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from twinplatform.errors import AlreadyExists, AssetNotFound, ChecksumMismatch, ConfigError, InputError
from twinplatform.storage.atomic import AtomicFile, write_bytes_atomic
from twinplatform.storage.base import ByteProgress, ObjectInfo
from twinplatform.storage.checksum import copy_with_sha256
from twinplatform.storage.keys import RESERVED_SEGMENT_PREFIX, validate_key, validate_prefix
from twinplatform.storage.locking import HeldLock, file_lock

#: the platform's bookkeeping folder inside the root; keys may not start with it (keys.py)
META_DIR = ".twinplatform"


def _modified_at(status: os.stat_result) -> datetime:
    return datetime.fromtimestamp(status.st_mtime, tz=timezone.utc)


def _scan(base: Path, prefix: str) -> list[tuple[str, os.stat_result]]:
    """(key, stat) of every regular file under `base` whose relative POSIX path starts with `prefix`.

    Skips reserved names (the bookkeeping folder, temp files) and never follows symlinks. Sorted by key:
    a sorted directory walk is not key order ("a-c" < "a/b" but the folder "a" sorts first).
    """
    if prefix == "" or prefix.endswith("/"):
        start_rel, first_name = prefix, ""
    else:
        parent, _, first_name = prefix.rpartition("/")
        start_rel = f"{parent}/" if parent else ""
    found: list[tuple[str, os.stat_result]] = []
    pending = [(base.joinpath(*start_rel.split("/")) if start_rel else base, start_rel, first_name)]
    while pending:
        directory, rel, name_start = pending.pop()
        try:
            entries = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                if entry.name.startswith(RESERVED_SEGMENT_PREFIX) or not entry.name.startswith(name_start):
                    continue
                key = rel + entry.name
                try:
                    status = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted while we walked
                    continue
                if stat.S_ISDIR(status.st_mode):
                    pending.append((Path(entry.path), f"{key}/", ""))
                elif stat.S_ISREG(status.st_mode):
                    found.append((key, status))
    found.sort(key=lambda item: item[0])
    return found


def _prune_empty_dirs(directories: set[Path], stop: Path) -> None:
    """Remove each folder and then its parents while they are empty, never `stop` or anything above it."""
    for directory in sorted(directories, key=lambda path: len(path.parts), reverse=True):
        while directory != stop and stop in directory.parents:
            try:
                directory.rmdir()
            except OSError as exc:
                # not empty (another object, or a writer's temp file) or already gone: stop climbing here
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    break
                raise
            directory = directory.parent


class LocalBackend:
    """StorageBackend over a local (or mounted) folder; see the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.url = self.root.as_uri()
        self._meta = self.root / META_DIR
        self._checksums = self._meta / "checksums"

    @classmethod
    def from_url(cls, url: str, options: object | None = None) -> LocalBackend:
        """Open `file:///absolute/folder` (the registry's factory). file:// stores take no options."""
        parts = urlsplit(url)
        path = url2pathname(parts.path)
        if (
            parts.scheme != "file"
            or parts.netloc not in ("", "localhost")
            or parts.query
            or parts.fragment
            or not os.path.isabs(path)
        ):
            raise ConfigError(
                f"malformed local store URL {url!r}: use file:///absolute/path/to/folder "
                "(three slashes, no host, no query)"
            )
        if options is not None:
            raise ConfigError(f"{url}: a file:// store takes no options, got {type(options).__name__}")
        return cls(Path(path))

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    # -- paths, locks, checksum store -------------------------------------------------------------------

    def _data_path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _checksum_path(self, key: str) -> Path:
        return self._checksums.joinpath(*key.split("/"))

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(
                f"store folder {self.root} does not exist: create it (mkdir -p {self.root}) or fix PLATFORM_STORE_URL"
            )

    def _lock(self, *, shared: bool) -> AbstractContextManager[HeldLock]:
        self._meta.mkdir(exist_ok=True)
        return file_lock(self._meta / "lock", shared=shared)

    def _read_checksum(self, key: str) -> str | None:
        try:
            return self._checksum_path(key).read_text(encoding="ascii").strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def _write_checksum(self, key: str, checksum: str | None) -> None:
        path = self._checksum_path(key)
        if checksum is None:
            path.unlink(missing_ok=True)
            return
        self._make_parent(path, key)
        write_bytes_atomic(path, f"{checksum}\n".encode("ascii"))

    def _make_parent(self, path: Path, key: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InputError(
                f"key {key!r} cannot be stored in {self.url}: one of its parent folders is an object "
                "(a folder store cannot hold both 'a' and 'a/b'); choose another key"
            ) from exc

    def _open_object(self, key: str) -> io.BufferedReader:
        try:
            return open(self._data_path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise AssetNotFound(
                f"object {key!r} does not exist in {self.url}: check the key or upload it first"
            ) from exc

    def _publish(self, atomic: AtomicFile, key: str, checksum: str | None, *, overwrite: bool) -> None:
        """Record `checksum` and rename the temp file into place; caller holds the exclusive lock."""
        target = atomic.target
        if target.is_dir():
            raise InputError(
                f"key {key!r} cannot be stored in {self.url}: other objects live under {key}/ "
                "(a folder store cannot hold both 'a' and 'a/b'); choose another key"
            )
        if not overwrite and os.path.lexists(target):
            raise self._exists_error(key)
        self._write_checksum(key, checksum)
        try:
            atomic.commit(overwrite=overwrite)
        except FileExistsError as exc:  # a writer that bypassed the store lock won the create-only link
            raise self._exists_error(key) from exc

    def _exists_error(self, key: str) -> AlreadyExists:
        return AlreadyExists(
            f"object {key!r} already exists in {self.url}: replace it explicitly (overwrite=True / "
            "--replace) or use another key"
        )

    # -- StorageBackend -----------------------------------------------------------------------------------

    def check_access(self) -> None:
        self._require_root()
        try:
            with self._lock(shared=True):
                pass
        except PermissionError as exc:
            raise ConfigError(
                f"no permission to write in the store folder {self.root}: fix its owner/permissions "
                "or point PLATFORM_STORE_URL elsewhere"
            ) from exc
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise ConfigError(
                f"no permission to read and write the store folder {self.root}: fix its owner/permissions"
            )

    def put_file(
        self, local_path: Path, key: str, *, overwrite: bool = True, progress: ByteProgress | None = None
    ) -> ObjectInfo:
        validate_key(key)
        self._require_root()
        target = self._data_path(key)
        with ExitStack() as stack:
            try:
                source = stack.enter_context(open(local_path, "rb"))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                raise InputError(f"cannot upload {local_path}: it is not an existing file") from exc
            # NOTE: the shared lock keeps delete() from pruning the folder between mkdir and creating the
            # temp file; once the temp file exists the folder is not empty and cannot be pruned.
            with self._lock(shared=True):
                self._make_parent(target, key)
                atomic = stack.enter_context(AtomicFile(target))
            checksum, size = copy_with_sha256(source, atomic.file, progress=progress)
            atomic.sync()  # the slow fsync outside the lock
            with self._lock(shared=False):
                self._publish(atomic, key, checksum, overwrite=overwrite)
                modified_at = _modified_at(target.stat())  # ours: no other writer can publish meanwhile
        return ObjectInfo(key, size, checksum, modified_at)

    def get_file(self, key: str, local_path: Path, *, progress: ByteProgress | None = None) -> ObjectInfo:
        validate_key(key)
        self._require_root()
        with ExitStack() as stack:
            with self._lock(shared=True):
                source = stack.enter_context(self._open_object(key))
                recorded = self._read_checksum(key)
            modified_at = _modified_at(os.fstat(source.fileno()))
            local_path.parent.mkdir(parents=True, exist_ok=True)
            atomic = stack.enter_context(AtomicFile(local_path))
            actual, size = copy_with_sha256(source, atomic.file, progress=progress)
            if recorded is not None and actual != recorded:
                raise ChecksumMismatch(
                    f"object {key!r} in {self.url} is corrupt: expected sha256 {recorded}, read {actual}; "
                    f"nothing was written to {local_path}. Re-upload the object."
                )
            atomic.commit()
        return ObjectInfo(key, size, actual, modified_at)

    def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        self._require_root()
        with self._lock(shared=True):
            try:
                status = os.stat(self._data_path(key))
            except (FileNotFoundError, NotADirectoryError):
                return None
            if not stat.S_ISREG(status.st_mode):
                return None
            checksum = self._read_checksum(key)
        return ObjectInfo(key, status.st_size, checksum, _modified_at(status))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under `prefix` in key order. `checksum` is None, as on S3, whose listing does not
        return object metadata: call `head` for it."""
        validate_prefix(prefix)
        self._require_root()
        for key, status in _scan(self.root, prefix):
            yield ObjectInfo(key, status.st_size, None, _modified_at(status))

    def copy(self, source_key: str, target_key: str) -> ObjectInfo:
        validate_key(source_key)
        validate_key(target_key)
        self._require_root()
        target = self._data_path(target_key)
        with ExitStack() as stack:
            with self._lock(shared=True):
                source = stack.enter_context(self._open_object(source_key))
                recorded = self._read_checksum(source_key)
                self._make_parent(target, target_key)
                atomic = stack.enter_context(AtomicFile(target))
            actual, size = copy_with_sha256(source, atomic.file)
            if recorded is not None and actual != recorded:
                raise ChecksumMismatch(
                    f"object {source_key!r} in {self.url} is corrupt: expected sha256 {recorded}, read "
                    f"{actual}; it was not copied to {target_key!r}. Re-upload it."
                )
            atomic.sync()
            with self._lock(shared=False):
                self._publish(atomic, target_key, recorded, overwrite=True)
                modified_at = _modified_at(target.stat())
        return ObjectInfo(target_key, size, recorded, modified_at)

    def delete(self, key: str) -> None:
        validate_key(key)
        self._require_root()
        with self._lock(shared=False):
            self._unlink(key)
            _prune_empty_dirs({self._data_path(key).parent}, self.root)
            _prune_empty_dirs({self._checksum_path(key).parent}, self._checksums)

    def delete_prefix(self, prefix: str) -> builtins.list[str]:  # `list` is a method name here
        """Delete every object under `prefix` and the folders left empty; return the removed keys.

        An empty prefix is refused (InputError): wiping a whole store is not something to do by accident.
        """
        validate_prefix(prefix)
        if prefix == "":
            raise InputError("refusing to delete every object in the store: pass a non-empty prefix")
        self._require_root()
        removed: list[str] = []
        with self._lock(shared=False):
            for key, _status in _scan(self.root, prefix):
                if self._unlink(key):
                    removed.append(key)
            # checksums whose data never landed (a crash mid-publish) go too
            orphans = [key for key, _status in _scan(self._checksums, prefix)]
            for key in orphans:
                self._checksum_path(key).unlink(missing_ok=True)
            _prune_empty_dirs({self._data_path(key).parent for key in removed}, self.root)
            _prune_empty_dirs({self._checksum_path(key).parent for key in removed + orphans}, self._checksums)
        return removed

    def _unlink(self, key: str) -> bool:
        """Remove one object's data and checksum (caller holds the exclusive lock); True if data existed."""
        data = self._data_path(key)
        try:
            existed = stat.S_ISREG(os.lstat(data).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            existed = False
        if existed:
            data.unlink()
        try:
            self._checksum_path(key).unlink(missing_ok=True)
        except (NotADirectoryError, IsADirectoryError):
            pass  # the path is a folder of other keys' checksums, so this key never had one
        return existed
