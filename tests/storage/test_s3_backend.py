"""S3-only behaviour of S3Backend (the shared contract is in tests/contract/test_storage_backend.py).

Real HTTP against a moto server; boto3 is never patched.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.s3_fixtures import MotoBucket
from twinplatform.errors import (
    AlreadyExists,
    AssetNotFound,
    ConfigError,
    PlatformError,
    TransientError,
)
from twinplatform.storage.s3 import CHECKSUM_METADATA, MiB, S3Backend, S3Options
from twinplatform.storage.s3_errors import translate_s3_error

SMALL_PARTS = {"multipart_threshold_bytes": 5 * MiB, "multipart_chunk_bytes": 5 * MiB}


@pytest.fixture
def backend(s3_bucket: MotoBucket) -> Iterator[S3Backend]:
    store = S3Backend(s3_bucket.name, "twins/prefix", s3_bucket.options(**SMALL_PARTS))
    yield store
    store.close()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_url_names_bucket_and_prefix_but_no_secrets(s3_bucket: MotoBucket) -> None:
    store = S3Backend(s3_bucket.name, "/twins/prefix/", s3_bucket.options(secret_access_key="hunter2"))
    try:
        assert store.url == f"s3://{s3_bucket.name}/twins/prefix"
        assert "hunter2" not in store.url + repr(store) + repr(store.options)
    finally:
        store.close()


def test_object_is_readable_by_plain_boto3_under_the_prefix(
    backend: S3Backend, s3_bucket: MotoBucket, tmp_path: Path
) -> None:
    data = b"plain boto3 must see exactly this"
    backend.put_file(write(tmp_path / "in", data), "raw/alice/a.bin")
    plain = s3_bucket.plain_client()
    try:
        response = plain.get_object(Bucket=s3_bucket.name, Key="twins/prefix/raw/alice/a.bin")
        body = response["Body"].read()
        listed = plain.list_objects_v2(Bucket=s3_bucket.name)["Contents"]
    finally:
        plain.close()

    assert body == data
    assert response["Metadata"] == {CHECKSUM_METADATA: hashlib.sha256(data).hexdigest()}
    assert [entry["Key"] for entry in listed] == ["twins/prefix/raw/alice/a.bin"]


def test_large_upload_is_multipart_and_still_carries_the_sha256(
    backend: S3Backend, s3_bucket: MotoBucket, tmp_path: Path
) -> None:
    data = os.urandom(12 * MiB)
    backend.put_file(write(tmp_path / "in", data), "big")
    backend.copy("big", "big-copy")  # multipart copy too: metadata must survive it
    plain = s3_bucket.plain_client()
    try:
        heads = [plain.head_object(Bucket=s3_bucket.name, Key=f"twins/prefix/{key}") for key in ("big", "big-copy")]
    finally:
        plain.close()

    for head in heads:
        assert head["ETag"].strip('"').endswith("-3")  # 3 parts of 5/5/2 MiB: the ETag is not an MD5
        assert head["Metadata"][CHECKSUM_METADATA] == hashlib.sha256(data).hexdigest()


def test_list_follows_pagination(s3_bucket: MotoBucket) -> None:
    store = S3Backend(s3_bucket.name, "twins/prefix", s3_bucket.options(list_page_size=2))
    plain = s3_bucket.plain_client()
    try:
        for index in range(5):
            plain.put_object(Bucket=s3_bucket.name, Key=f"twins/prefix/many/{index}", Body=b"")

        keys = [info.key for info in store.list("many/")]

        assert keys == [f"many/{index}" for index in range(5)]  # 3 pages of at most 2 keys
        assert store.delete_prefix("many/") == keys
        assert list(store.list("many/")) == []
    finally:
        plain.close()
        store.close()


def test_folder_markers_are_not_listed_but_go_with_delete_prefix(
    backend: S3Backend, s3_bucket: MotoBucket, tmp_path: Path
) -> None:
    backend.put_file(write(tmp_path / "in", b"x"), "raw/clip")
    plain = s3_bucket.plain_client()
    try:
        plain.put_object(Bucket=s3_bucket.name, Key="twins/prefix/raw/", Body=b"")  # as S3 consoles do

        assert [info.key for info in backend.list("raw/")] == ["raw/clip"]
        assert backend.delete_prefix("raw/") == ["raw/clip"]
        assert plain.list_objects_v2(Bucket=s3_bucket.name).get("Contents", []) == []
    finally:
        plain.close()


def test_missing_bucket_is_a_config_error_naming_it(s3_bucket: MotoBucket, tmp_path: Path) -> None:
    store = S3Backend("no-such-bucket-here", "", s3_bucket.options())
    source = write(tmp_path / "in", b"x")
    try:
        for attempt in (
            store.check_access,
            lambda: store.put_file(source, "k"),
            lambda: store.put_file(source, "k", overwrite=False),
            lambda: store.head("k"),
            lambda: store.get_file("k", tmp_path / "out"),
            lambda: list(store.list("")),
        ):
            with pytest.raises(ConfigError, match="bucket 'no-such-bucket-here' does not exist") as raised:
                attempt()
            assert "aws s3 mb s3://no-such-bucket-here" in str(raised.value)
            assert s3_bucket.endpoint_url in str(raised.value)
            assert isinstance(raised.value.__cause__, ClientError)  # translated with `from exc`
    finally:
        store.close()


def test_unreachable_endpoint_is_transient_and_fails_fast(tmp_path: Path) -> None:
    options = S3Options(
        endpoint_url=f"http://127.0.0.1:{closed_loopback_port()}",
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
        connect_timeout_s=0.5,
        read_timeout_s=0.5,
        max_attempts=2,
    )
    store = S3Backend("some-bucket", "", options)
    source = write(tmp_path / "in", b"x")
    try:
        started = time.monotonic()
        for attempt in (
            lambda: store.put_file(source, "k"),
            lambda: store.head("k"),
            lambda: store.get_file("k", tmp_path / "out"),
        ):
            with pytest.raises(TransientError, match="network error") as raised:
                attempt()
            assert raised.value.__cause__ is not None
        # at start-up the same failure means the endpoint setting is wrong
        with pytest.raises(ConfigError, match="cannot reach the S3 endpoint"):
            store.check_access()
        assert time.monotonic() - started < 10
        assert not (tmp_path / "out").exists()
    finally:
        store.close()


def test_bad_credentials_are_a_config_error(s3_bucket: MotoBucket, enforce_moto_auth: None, tmp_path: Path) -> None:
    options = s3_bucket.options(access_key_id="AKIAWRONGWRONGWRONG", secret_access_key="not-the-secret")
    store = S3Backend(s3_bucket.name, "", options)
    source = write(tmp_path / "in", b"x")
    try:
        for attempt in (store.check_access, lambda: store.put_file(source, "k"), lambda: store.head("k")):
            with pytest.raises(ConfigError, match="check the store's access key id") as raised:
                attempt()
            assert "not-the-secret" not in str(raised.value)
            assert isinstance(raised.value.__cause__, ClientError)
    finally:
        store.close()


# NOTE: s3transfer reports progress in 256 KiB steps and flushes the rest when the request ends, so the
# single-part case needs a body of several steps (still below the 5 MiB multipart threshold)
@pytest.mark.parametrize("size_bytes", [4 * MiB, 6 * MiB], ids=["single-part", "multipart"])
def test_create_only_put_loses_to_a_writer_that_commits_after_the_head_check(
    backend: S3Backend, s3_bucket: MotoBucket, tmp_path: Path, size_bytes: int
) -> None:
    # The competing writer runs inside our progress callback: after put_file's head check found no
    # object and before our PutObject / CompleteMultipartUpload commits. Only the conditional commit
    # (If-None-Match: *) can stop us from replacing its object now.
    # (Two truly simultaneous completes cannot be tested on moto: its check-then-store is not atomic.)
    plain = s3_bucket.plain_client()
    competitor_done: list[bool] = []

    def competing_writer(_bytes: int) -> None:
        if not competitor_done:
            competitor_done.append(True)
            plain.put_object(Bucket=s3_bucket.name, Key="twins/prefix/manifest", Body=b"competitor")

    try:
        with pytest.raises(AlreadyExists, match="manifest"):
            backend.put_file(
                write(tmp_path / "ours", os.urandom(size_bytes)),
                "manifest",
                overwrite=False,
                progress=competing_writer,
            )
        body = plain.get_object(Bucket=s3_bucket.name, Key="twins/prefix/manifest")["Body"].read()
        uploads = plain.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", [])
    finally:
        plain.close()

    assert competitor_done and body == b"competitor"
    assert uploads == []  # the refused multipart upload was aborted, not left to bill storage


def test_create_only_put_of_a_new_key_succeeds_in_both_sizes(backend: S3Backend, tmp_path: Path) -> None:
    for size_bytes in (1000, 6 * MiB):
        data = os.urandom(size_bytes)
        backend.put_file(write(tmp_path / "in", data), f"new-{size_bytes}", overwrite=False)
        backend.get_file(f"new-{size_bytes}", tmp_path / "out")
        assert (tmp_path / "out").read_bytes() == data


def test_get_of_an_object_deleted_by_another_tool_is_asset_not_found(backend: S3Backend, tmp_path: Path) -> None:
    with pytest.raises(AssetNotFound, match="'raw/gone'"):
        backend.get_file("raw/gone", tmp_path / "out")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("ConditionalRequestConflict", 409, TransientError),
        ("AccessDenied", 403, ConfigError),
        ("SignatureDoesNotMatch", 403, ConfigError),
        ("InvalidAccessKeyId", 403, ConfigError),
        ("NoSuchKey", 404, AssetNotFound),
        ("NoSuchBucket", 404, ConfigError),
        ("PreconditionFailed", 412, AlreadyExists),
        ("NoSuchUpload", 404, TransientError),
        ("InvalidArgument", 400, PlatformError),
    ],
)
def test_error_codes_map_onto_the_platform_tree(code: str, status: int, expected: type[PlatformError]) -> None:
    # NOTE: moto cannot be made to answer SlowDown or 5xx, so the mapping table is checked on the
    # translation function itself with the exception botocore would raise
    error = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )

    translated = translate_s3_error(error, store_url="s3://bucket", bucket="bucket", endpoint="e", key="raw/k")

    assert type(translated) is expected
