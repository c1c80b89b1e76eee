"""sha256_file and copy_with_sha256 agree with hashlib for every size, including chunk boundaries."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from twinplatform.storage.checksum import copy_with_sha256, sha256_file


@pytest.mark.parametrize("size_bytes", [0, 1, 4095, 4096, 4097, 3 * 4096])
def test_sha256_file_matches_hashlib(tmp_path: Path, size_bytes: int) -> None:
    data = os.urandom(size_bytes)
    path = tmp_path / "f"
    path.write_bytes(data)

    assert sha256_file(path, chunk_bytes=4096) == hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_copy_with_sha256_copies_hashes_and_reports_progress() -> None:
    data = os.urandom(10_000)
    target = io.BytesIO()
    progress: list[int] = []

    digest, size = copy_with_sha256(io.BytesIO(data), target, progress=progress.append, chunk_bytes=4096)

    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert target.getvalue() == data
    assert progress == [4096, 4096, 1808]
