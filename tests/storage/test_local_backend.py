"""Local-folder-only behaviour of LocalBackend (the shared contract is in tests/contract/)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from twinplatform.errors import AlreadyExists, ConfigError, InputError
from twinplatform.storage.atomic import TEMP_PREFIX
from twinplatform.storage.local import META_DIR, LocalBackend


class Interrupted(Exception):
    """Raised from a progress callback to abort a transfer half-way."""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    folder.mkdir()
    return folder


@pytest.fixture
def backend(root: Path) -> LocalBackend:
    return LocalBackend(root)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tree(folder: Path) -> list[str]:
    """Every file and folder under `folder` outside the bookkeeping folder, as POSIX relative paths."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.relative_to(folder).parts[0] != META_DIR
    )


def interrupt_after_first_chunk(_bytes: int) -> None:
    raise Interrupted


def test_url_round_trips_through_from_url(root: Path) -> None:
    backend = LocalBackend(root)

    assert backend.url == root.as_uri()
    assert LocalBackend.from_url(backend.url).root == root


@pytest.mark.parametrize("url", ["file://relative/dir", "file:relative", "file:///dir?x=1", "s3://bucket"])
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="file:///absolute"):
        LocalBackend.from_url(url)


def test_a_missing_root_is_a_config_error(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "nowhere")

    with pytest.raises(ConfigError, match="does not exist: create it"):
        backend.check_access()
    with pytest.raises(ConfigError):
        backend.put_file(write(tmp_path / "in", b"x"), "k")
    assert not (tmp_path / "nowhere").exists()


def test_the_key_tree_holds_only_objects(backend: LocalBackend, root: Path, tmp_path: Path) -> None:
    backend.put_file(write(tmp_path / "in", b"1"), "raw/a/1.bin")
    backend.put_file(write(tmp_path / "in", b"2"), "raw/a/1.bin")  # replace
    backend.copy("raw/a/1.bin", "raw/b/2.bin")
    backend.get_file("raw/b/2.bin", tmp_path / "out" / "2.bin")
    with pytest.raises(AlreadyExists):
        backend.put_file(write(tmp_path / "in", b"3"), "raw/a/1.bin", overwrite=False)

    assert tree(root) == ["raw", "raw/a", "raw/a/1.bin", "raw/b", "raw/b/2.bin"]
    assert os.listdir(tmp_path / "out") == ["2.bin"]
    assert [info.key for info in backend.list("")] == ["raw/a/1.bin", "raw/b/2.bin"]


def test_an_interrupted_upload_leaves_no_temp_file_and_no_object(
    backend: LocalBackend, root: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "in", os.urandom(3 * 1024 * 1024))

    with pytest.raises(Interrupted):
        backend.put_file(source, "raw/big.bin", progress=interrupt_after_first_chunk)

    assert backend.head("raw/big.bin") is None
    assert [name for name in tree(root) if TEMP_PREFIX in name] == []


def test_an_interrupted_download_leaves_no_temp_file(backend: LocalBackend, tmp_path: Path) -> None:
    backend.put_file(write(tmp_path / "in", os.urandom(3 * 1024 * 1024)), "raw/big.bin")
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    write(target_dir / "big.bin", b"previous copy")

    with pytest.raises(Interrupted):
        backend.get_file("raw/big.bin", target_dir / "big.bin", progress=interrupt_after_first_chunk)

    assert os.listdir(target_dir) == ["big.bin"]
    assert (target_dir / "big.bin").read_bytes() == b"previous copy"  # untouched, never half-written


def test_checksums_live_outside_the_key_tree_and_go_with_the_object(
    backend: LocalBackend, root: Path, tmp_path: Path
) -> None:
    info = backend.put_file(write(tmp_path / "in", b"bytes"), "raw/x/clip.bin")
    sidecar = root / META_DIR / "checksums" / "raw" / "x" / "clip.bin"

    assert sidecar.read_text().strip() == info.checksum
    assert [listed.key for listed in backend.list("")] == ["raw/x/clip.bin"]

    backend.delete("raw/x/clip.bin")

    assert not sidecar.exists()
    assert not (root / META_DIR / "checksums" / "raw").exists()  # emptied folders pruned there too
    assert tree(root) == []  # and in the key tree


def test_delete_prefix_prunes_only_folders_it_emptied(backend: LocalBackend, root: Path, tmp_path: Path) -> None:
    for key in ["t/1/a/b/c", "t/1/d", "t/2/e"]:
        backend.put_file(write(tmp_path / "in", b"x"), key)

    assert backend.delete_prefix("t/1/") == ["t/1/a/b/c", "t/1/d"]

    assert tree(root) == ["t", "t/2", "t/2/e"]


def test_traversal_keys_never_touch_anything_outside_the_root(
    backend: LocalBackend, root: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "in", b"x")
    for key in ["../outside", "a/../../outside", "/etc/outside", "a\\..\\outside", "a/./b"]:
        with pytest.raises(InputError):
            backend.put_file(source, key)
        with pytest.raises(InputError):
            backend.get_file(key, tmp_path / "out")
        with pytest.raises(InputError):
            backend.delete(key)
    with pytest.raises(InputError):
        list(backend.list("../"))

    assert sorted(os.listdir(tmp_path)) == ["in", "store"]


def test_a_key_cannot_be_both_an_object_and_a_folder(backend: LocalBackend, tmp_path: Path) -> None:
    source = write(tmp_path / "in", b"x")
    backend.put_file(source, "a")
    backend.put_file(source, "b/c")

    with pytest.raises(InputError, match="parent folders is an object"):
        backend.put_file(source, "a/child")
    with pytest.raises(InputError, match="other objects live under"):
        backend.put_file(source, "b")
    assert [info.key for info in backend.list("")] == ["a", "b/c"]


def test_concurrent_create_only_puts_have_exactly_one_winner(backend: LocalBackend, tmp_path: Path) -> None:
    sources = [write(tmp_path / f"in{index}", f"writer {index}".encode()) for index in range(8)]
    barrier = threading.Barrier(len(sources))
    winners: list[int] = []
    losers: list[int] = []

    def writer(index: int) -> None:
        barrier.wait()
        try:
            backend.put_file(sources[index], "manifest.json", overwrite=False)
            winners.append(index)
        except AlreadyExists:
            losers.append(index)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(len(sources))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1 and len(losers) == len(sources) - 1
    backend.get_file("manifest.json", tmp_path / "out")  # bytes match the recorded checksum
    assert (tmp_path / "out").read_bytes() == f"writer {winners[0]}".encode()


def test_a_missing_local_source_is_an_input_error(backend: LocalBackend, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an existing file"):
        backend.put_file(tmp_path / "missing", "k")
