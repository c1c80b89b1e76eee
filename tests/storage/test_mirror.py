"""MirrorCache: download only what is missing or different, once per host, and keep the tree clean."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinplatform.errors import AssetNotFound, ChecksumMismatch
from twinplatform.storage.base import ByteProgress, ObjectInfo, StorageBackend
from twinplatform.storage.local import LocalBackend
from twinplatform.storage.mirror import FetchResult, MirrorCache

STATE = ".twinplatform-mirror"


class CountingBackend:
    """A StorageBackend that forwards to another one and counts downloads (get_file calls).

    `download_delay_s` stretches each download so concurrent fetches really overlap.
    """

    def __init__(self, inner: StorageBackend, download_delay_s: float = 0.0) -> None:
        self.inner = inner
        self.url = inner.url
        self.downloads: list[str] = []
        self._download_delay_s = download_delay_s
        self._lock = threading.Lock()

    def check_access(self) -> None:
        self.inner.check_access()

    def put_file(
        self, local_path: Path, key: str, *, overwrite: bool = True, progress: ByteProgress | None = None
    ) -> ObjectInfo:
        return self.inner.put_file(local_path, key, overwrite=overwrite, progress=progress)

    def get_file(self, key: str, local_path: Path, *, progress: ByteProgress | None = None) -> ObjectInfo:
        with self._lock:
            self.downloads.append(key)
        time.sleep(self._download_delay_s)
        return self.inner.get_file(key, local_path, progress=progress)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def copy(self, source_key: str, target_key: str) -> ObjectInfo:
        return self.inner.copy(source_key, target_key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> list[str]:
        return self.inner.delete_prefix(prefix)


@pytest.fixture
def store(tmp_path: Path) -> CountingBackend:
    root = tmp_path / "store"
    root.mkdir()
    return CountingBackend(LocalBackend(root))


@pytest.fixture
def mirror_root(tmp_path: Path) -> Path:
    return tmp_path / "mirror"


def make_mirror(backend: StorageBackend, mirror_root: Path) -> MirrorCache:
    return MirrorCache(backend, lambda key: mirror_root / key, mirror_root / STATE)


@pytest.fixture
def mirror(store: CountingBackend, mirror_root: Path) -> MirrorCache:
    return make_mirror(store, mirror_root)


def upload(store: StorageBackend, tmp_path: Path, key: str, data: bytes) -> str:
    source = tmp_path / "upload.tmp"
    source.write_bytes(data)
    info = store.put_file(source, key)
    source.unlink()
    assert info.checksum is not None
    return info.checksum


def visible_tree(mirror_root: Path) -> list[str]:
    return sorted(
        path.relative_to(mirror_root).as_posix()
        for path in mirror_root.rglob("*")
        if path.is_file() and path.relative_to(mirror_root).parts[0] != STATE
    )


def test_backend_wrapper_satisfies_the_protocol(store: CountingBackend) -> None:
    assert isinstance(store, StorageBackend)


def test_first_fetch_downloads_and_second_does_not(
    store: CountingBackend, mirror: MirrorCache, mirror_root: Path, tmp_path: Path
) -> None:
    upload(store, tmp_path, "twins/t1/raw/clip.mp4", b"video bytes")

    first = mirror.fetch("twins/t1/raw/clip.mp4")
    second = mirror.fetch("twins/t1/raw/clip.mp4")

    assert first == FetchResult(mirror_root / "twins/t1/raw/clip.mp4", downloaded=True)
    assert second == FetchResult(mirror_root / "twins/t1/raw/clip.mp4", downloaded=False)
    assert first.path.read_bytes() == b"video bytes"
    assert store.downloads == ["twins/t1/raw/clip.mp4"]
    assert visible_tree(mirror_root) == ["twins/t1/raw/clip.mp4"]  # no sidecars, locks or temp files


def test_an_edited_local_copy_is_downloaded_again(store: CountingBackend, mirror: MirrorCache, tmp_path: Path) -> None:
    upload(store, tmp_path, "k", b"original")
    path = mirror.fetch("k").path
    path.write_bytes(b"edited!!")  # same size, different bytes

    result = mirror.fetch("k")

    assert result.downloaded
    assert path.read_bytes() == b"original"
    assert store.downloads == ["k", "k"]


def test_a_deleted_local_copy_is_downloaded_again(store: CountingBackend, mirror: MirrorCache, tmp_path: Path) -> None:
    upload(store, tmp_path, "k", b"original")
    mirror.fetch("k").path.unlink()

    assert mirror.fetch("k").downloaded
    assert store.downloads == ["k", "k"]


def test_a_changed_store_object_is_downloaded_again(
    store: CountingBackend, mirror: MirrorCache, tmp_path: Path
) -> None:
    upload(store, tmp_path, "k", b"version 1")
    mirror.fetch("k")
    upload(store, tmp_path, "k", b"version 2")

    result = mirror.fetch("k")

    assert result.downloaded and result.path.read_bytes() == b"version 2"


def test_the_expected_checksum_skips_the_head_request_and_the_download(
    store: CountingBackend, mirror: MirrorCache, tmp_path: Path
) -> None:
    checksum = upload(store, tmp_path, "k", b"bytes")
    mirror.fetch("k", expected_checksum=checksum)
    store.inner.delete("k")  # gone from the store: only the local copy can answer now

    assert mirror.fetch("k", expected_checksum=checksum).downloaded is False


def test_an_expected_checksum_the_store_does_not_hold_raises_and_downloads_nothing(
    store: CountingBackend, mirror: MirrorCache, mirror_root: Path, tmp_path: Path
) -> None:
    upload(store, tmp_path, "k", b"what the store holds")
    stale = hashlib.sha256(b"what the manifest says").hexdigest()

    with pytest.raises(ChecksumMismatch, match=stale):
        mirror.fetch("k", expected_checksum=stale)

    assert store.downloads == []
    assert visible_tree(mirror_root) == []


def test_a_missing_key_raises_asset_not_found(mirror: MirrorCache) -> None:
    with pytest.raises(AssetNotFound, match="'nothing/here'"):
        mirror.fetch("nothing/here")


def test_a_download_carries_the_store_modification_time(
    store: CountingBackend, mirror: MirrorCache, tmp_path: Path
) -> None:
    upload(store, tmp_path, "k", b"bytes")
    stored = store.head("k")
    assert stored is not None and stored.modified_at is not None

    path = mirror.fetch("k").path

    assert abs(path.stat().st_mtime - stored.modified_at.timestamp()) < 0.5


def test_the_cached_checksum_is_trusted_while_size_and_mtime_match(
    store: CountingBackend, mirror: MirrorCache, tmp_path: Path
) -> None:
    checksum = upload(store, tmp_path, "k", b"original")
    path = mirror.fetch("k").path
    status = path.stat()

    # a same-size edit that also restores the mtime is invisible to the (size, mtime_ns) record: the price
    # of not re-hashing every file on every fetch (a plain edit moves the mtime and is caught)
    path.write_bytes(b"ORIGINAL")
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))

    assert mirror.local_checksum(path) == checksum
    assert mirror.fetch("k").downloaded is False


def test_a_file_edited_within_the_mtime_granularity_of_its_record_is_rehashed(
    mirror: MirrorCache, mirror_root: Path
) -> None:
    path = mirror.path("seeded/by/hand")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"first")
    assert mirror.local_checksum(path) == hashlib.sha256(b"first").hexdigest()  # recorded just now
    status = path.stat()

    # same size and, as within one filesystem timestamp tick, the same mtime: only the "racy" rule
    # (mtime too close to the record's time to prove anything) catches the edit
    path.write_bytes(b"FIRST")
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))

    assert mirror.local_checksum(path) == hashlib.sha256(b"FIRST").hexdigest()


def test_concurrent_fetches_of_one_key_download_once(tmp_path: Path, mirror_root: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    store = CountingBackend(LocalBackend(root), download_delay_s=0.3)
    upload(store, tmp_path, "weights/model.pt", os.urandom(1024 * 1024))
    # separate MirrorCache objects, as two worker processes would have; the flock is per open file, so
    # threads exclude each other exactly like processes do
    mirrors = [make_mirror(store, mirror_root) for _ in range(4)]
    barrier = threading.Barrier(len(mirrors))
    results: list[FetchResult] = []

    def fetch(mirror: MirrorCache) -> None:
        barrier.wait()
        results.append(mirror.fetch("weights/model.pt"))

    threads = [threading.Thread(target=fetch, args=(mirror,)) for mirror in mirrors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.downloads == ["weights/model.pt"]
    assert sorted(result.downloaded for result in results) == [False, False, False, True]


def test_remove_deletes_the_copy_and_its_bookkeeping(
    store: CountingBackend, mirror: MirrorCache, mirror_root: Path, tmp_path: Path
) -> None:
    upload(store, tmp_path, "k", b"bytes")
    mirror.fetch("k")

    assert mirror.remove("k") is True
    assert mirror.remove("k") is False
    assert visible_tree(mirror_root) == []
    assert [path for path in (mirror_root / STATE).rglob("*") if path.is_file()] == []
    assert mirror.fetch("k").downloaded is True


def test_remove_tree_deletes_files_and_emptied_folders_only_under_the_tree(
    store: CountingBackend, mirror: MirrorCache, mirror_root: Path, tmp_path: Path
) -> None:
    for key in ["twins/t1/a/1", "twins/t1/b/2", "twins/t2/3"]:
        upload(store, tmp_path, key, key.encode())
        mirror.fetch(key)

    removed = mirror.remove_tree(mirror_root / "twins" / "t1")

    assert removed == [mirror_root / "twins/t1/a/1", mirror_root / "twins/t1/b/2"]
    assert not (mirror_root / "twins" / "t1").exists()
    assert visible_tree(mirror_root) == ["twins/t2/3"]
    assert mirror.fetch("twins/t2/3").downloaded is False
    assert mirror.fetch("twins/t1/a/1").downloaded is True


def test_remove_tree_of_the_whole_mirror_keeps_the_state_folder(
    store: CountingBackend, mirror: MirrorCache, mirror_root: Path, tmp_path: Path
) -> None:
    upload(store, tmp_path, "a/b", b"x")
    mirror.fetch("a/b")

    assert mirror.remove_tree(mirror_root) == [mirror_root / "a/b"]
    assert sorted(path.name for path in mirror_root.iterdir()) == [STATE]
