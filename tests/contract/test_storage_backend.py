"""The StorageBackend contract: every backend (local folder, S3 via a real moto server over HTTP) passes it.

A new backend adds one entry to `BACKEND_NAMES` and one branch to the `store` fixture, and changes nothing
else here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.s3_fixtures import MotoBucket
from twinplatform.errors import AlreadyExists, AssetNotFound, ChecksumMismatch, InputError
from twinplatform.storage.base import StorageBackend
from twinplatform.storage.local import LocalBackend
from twinplatform.storage.s3 import CHECKSUM_METADATA, MiB, S3Backend

BACKEND_NAMES = ["local", "s3"]


@dataclass
class Store:
    """A backend under test plus the one backend-specific trick the contract needs."""

    backend: StorageBackend
    #: replace an object's bytes behind the backend's back, keeping its recorded checksum
    corrupt: Callable[[str, bytes], None]


@pytest.fixture(params=BACKEND_NAMES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        root = tmp_path / "store"
        root.mkdir()

        def corrupt_local(key: str, data: bytes) -> None:
            (root / key).write_bytes(data)

        yield Store(LocalBackend(root), corrupt_local)
        return

    bucket: MotoBucket = request.getfixturevalue("s3_bucket")
    # small multipart settings so a 12 MiB file goes multipart (3 parts) quickly
    backend = S3Backend(
        bucket.name,
        "contract/prefix",
        bucket.options(multipart_threshold_bytes=5 * MiB, multipart_chunk_bytes=5 * MiB),
    )
    plain = bucket.plain_client()

    def corrupt_s3(key: str, data: bytes) -> None:
        full_key = f"contract/prefix/{key}"
        recorded = plain.head_object(Bucket=bucket.name, Key=full_key)["Metadata"][CHECKSUM_METADATA]
        plain.put_object(Bucket=bucket.name, Key=full_key, Body=data, Metadata={CHECKSUM_METADATA: recorded})

    try:
        yield Store(backend, corrupt_s3)
    finally:
        backend.close()
        plain.close()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_backend_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store.backend, StorageBackend)
    store.backend.check_access()
    assert store.backend.url.split("://", 1)[0] in BACKEND_NAMES + ["file"]
    assert "@" not in store.backend.url  # never credentials in the URL


def test_put_then_get_round_trips_bytes_and_sha256(store: Store, tmp_path: Path) -> None:
    data = b"talking head\n" * 1000
    source = write(tmp_path / "in" / "clip.bin", data)

    put = store.backend.put_file(source, "raw/alice/clip.bin")
    got = store.backend.get_file("raw/alice/clip.bin", tmp_path / "out" / "nested" / "clip.bin")

    assert put.checksum == sha256(data) == got.checksum
    assert (put.key, put.size_bytes) == ("raw/alice/clip.bin", len(data))
    assert (got.key, got.size_bytes) == ("raw/alice/clip.bin", len(data))
    assert (tmp_path / "out" / "nested" / "clip.bin").read_bytes() == data
    head = store.backend.head("raw/alice/clip.bin")
    assert head is not None
    assert (head.size_bytes, head.checksum) == (len(data), sha256(data))
    assert head.modified_at is not None and head.modified_at.tzinfo is not None


def test_empty_file_round_trips(store: Store, tmp_path: Path) -> None:
    info = store.backend.put_file(write(tmp_path / "empty", b""), "raw/empty")

    store.backend.get_file("raw/empty", tmp_path / "empty.out")

    assert info.checksum == sha256(b"")
    assert (tmp_path / "empty.out").read_bytes() == b""


def test_multipart_sized_file_round_trips_byte_identical(store: Store, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB)  # above the 5 MiB threshold: 3 parts on S3
    source = write(tmp_path / "big.bin", data)

    put = store.backend.put_file(source, "raw/big.bin")
    got = store.backend.get_file("raw/big.bin", tmp_path / "big.out")

    assert put.checksum == got.checksum == sha256(data)
    assert (tmp_path / "big.out").read_bytes() == data


def test_put_without_overwrite_refuses_and_keeps_the_original(store: Store, tmp_path: Path) -> None:
    store.backend.put_file(write(tmp_path / "v1", b"first"), "raw/k")

    with pytest.raises(AlreadyExists, match="raw/k"):
        store.backend.put_file(write(tmp_path / "v2", b"second"), "raw/k", overwrite=False)

    store.backend.get_file("raw/k", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"first"
    head = store.backend.head("raw/k")
    assert head is not None and head.checksum == sha256(b"first")


def test_put_without_overwrite_creates_a_new_key(store: Store, tmp_path: Path) -> None:
    info = store.backend.put_file(write(tmp_path / "v1", b"first"), "raw/new", overwrite=False)

    assert info.checksum == sha256(b"first")


def test_put_with_overwrite_replaces_bytes_and_checksum(store: Store, tmp_path: Path) -> None:
    store.backend.put_file(write(tmp_path / "v1", b"first"), "raw/k")
    store.backend.put_file(write(tmp_path / "v2", b"second, longer"), "raw/k")

    got = store.backend.get_file("raw/k", tmp_path / "out")

    assert (tmp_path / "out").read_bytes() == b"second, longer"
    assert got.checksum == sha256(b"second, longer")


def test_get_of_a_missing_key_raises_asset_not_found_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    target_dir = tmp_path / "out"
    target_dir.mkdir()

    with pytest.raises(AssetNotFound, match="raw/nothing-here"):
        store.backend.get_file("raw/nothing-here", target_dir / "x")

    assert list(target_dir.iterdir()) == []


def test_head_of_a_missing_key_is_none(store: Store) -> None:
    assert store.backend.head("raw/nothing-here") is None


def test_list_is_in_key_order_and_does_not_leak_neighbouring_prefixes(store: Store, tmp_path: Path) -> None:
    keys = ["raw/a/2.bin", "raw/a/1.bin", "raw/a/sub/3.bin", "raw/ab/4.bin", "raw/a-c", "raw/b/5.bin"]
    for index, key in enumerate(keys):
        store.backend.put_file(write(tmp_path / f"f{index}", b"x" * (index + 1)), key)

    listed = list(store.backend.list("raw/a/"))

    assert [info.key for info in listed] == ["raw/a/1.bin", "raw/a/2.bin", "raw/a/sub/3.bin"]
    assert [info.size_bytes for info in listed] == [2, 1, 3]
    # listing carries no checksum on any backend (S3's ListObjectsV2 returns no metadata): use head()
    assert {info.checksum for info in listed} == {None}
    # a prefix that is not a folder boundary matches like S3 does, in key order ("-" < "/")
    assert [info.key for info in store.backend.list("raw/a")] == [
        "raw/a-c",
        "raw/a/1.bin",
        "raw/a/2.bin",
        "raw/a/sub/3.bin",
        "raw/ab/4.bin",
    ]
    assert [info.key for info in store.backend.list("raw/ab/")] == ["raw/ab/4.bin"]
    assert list(store.backend.list("raw/zzz/")) == []


def test_copy_keeps_bytes_and_checksum(store: Store, tmp_path: Path) -> None:
    data = b"weights" * 100
    store.backend.put_file(write(tmp_path / "w", data), "common/model/w.bin")

    copied = store.backend.copy("common/model/w.bin", "twins/t1/w.bin")

    assert copied.key == "twins/t1/w.bin"
    assert copied.checksum == sha256(data)
    head = store.backend.head("twins/t1/w.bin")
    assert head is not None and head.checksum == sha256(data)
    store.backend.get_file("twins/t1/w.bin", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data


def test_copy_of_a_missing_key_raises_asset_not_found(store: Store) -> None:
    with pytest.raises(AssetNotFound, match="raw/missing"):
        store.backend.copy("raw/missing", "raw/target")


def test_delete_and_delete_prefix_report_what_they_removed(store: Store, tmp_path: Path) -> None:
    for key in ["t/x/1", "t/x/deep/2", "t/xy/3", "t/keep"]:
        store.backend.put_file(write(tmp_path / "f", key.encode()), key)

    store.backend.delete("t/keep")
    removed = store.backend.delete_prefix("t/x/")

    assert removed == ["t/x/1", "t/x/deep/2"]
    assert store.backend.head("t/keep") is None
    assert [info.key for info in store.backend.list("t/")] == ["t/xy/3"]
    assert store.backend.delete_prefix("t/x/") == []


def test_delete_of_a_missing_key_is_not_an_error(store: Store) -> None:
    store.backend.delete("raw/never-existed")


def test_delete_prefix_refuses_an_empty_prefix(store: Store) -> None:
    with pytest.raises(InputError, match="non-empty prefix"):
        store.backend.delete_prefix("")


def test_corrupted_object_raises_checksum_mismatch_and_leaves_no_file(store: Store, tmp_path: Path) -> None:
    store.backend.put_file(write(tmp_path / "in", b"the real bytes"), "raw/clip")
    store.corrupt("raw/clip", b"the wrong bytes")
    target_dir = tmp_path / "out"
    target_dir.mkdir()

    with pytest.raises(ChecksumMismatch) as raised:
        store.backend.get_file("raw/clip", target_dir / "clip")

    message = str(raised.value)
    assert "raw/clip" in message
    assert sha256(b"the real bytes") in message and sha256(b"the wrong bytes") in message
    assert list(target_dir.iterdir()) == []  # neither the target nor a temp file


def test_progress_callbacks_sum_to_the_file_size(store: Store, tmp_path: Path) -> None:
    data = os.urandom(6 * MiB + 123)  # multipart on S3: progress arrives from several threads
    uploaded: list[int] = []
    downloaded: list[int] = []

    store.backend.put_file(write(tmp_path / "in", data), "raw/p", progress=uploaded.append)
    store.backend.get_file("raw/p", tmp_path / "out", progress=downloaded.append)

    assert sum(uploaded) == len(data)
    assert sum(downloaded) == len(data)


@pytest.mark.parametrize(
    "key",
    ["../escape", "raw/../../escape", "/abs/key", "raw\\win", "raw//double", "raw/./dot", "", "raw/"],
)
def test_unsafe_keys_are_rejected_before_any_io(store: Store, tmp_path: Path, key: str) -> None:
    source = write(tmp_path / "in", b"x")

    with pytest.raises(InputError, match="invalid storage key"):
        store.backend.put_file(source, key)
    with pytest.raises(InputError):
        store.backend.head(key)
    assert not (tmp_path / "escape").exists()


def test_reserved_key_segments_are_rejected(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="reserved"):
        store.backend.put_file(write(tmp_path / "in", b"x"), ".twinplatform/checksums/evil")
