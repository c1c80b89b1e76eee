"""The s3:// backend: AWS S3 and S3-compatible stores (Ceph RGW, Garage, MinIO forks, moto) via boto3.

Each object carries the SHA-256 of its bytes as user metadata `sha256` (x-amz-meta-sha256), set at upload and
verified on every download; ETags are not used for integrity (multipart ETags are not content hashes).
Every botocore/boto3/s3transfer error is translated at this seam (table in `s3_errors`): missing key ->
AssetNotFound, missing bucket or refused credentials -> ConfigError, network/5xx/throttling -> TransientError.
"""

from __future__ import annotations

import builtins
import functools
import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.loaders
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from twinplatform.errors import (
    AssetNotFound,
    ChecksumMismatch,
    ConfigError,
    InputError,
    PlatformError,
    TransientError,
)
from twinplatform.storage.atomic import AtomicFile
from twinplatform.storage.base import ByteProgress, ObjectInfo
from twinplatform.storage.checksum import sha256_file
from twinplatform.storage.keys import validate_key, validate_prefix
from twinplatform.storage.registry import redact_url
from twinplatform.storage.s3_errors import (
    CREDENTIAL_CODES,
    S3_ERRORS,
    exists_error,
    translate_s3_error,
    unwrap,
)

MiB = 1024 * 1024
#: S3's part-size limits: every part but the last must be at least 5 MiB, and at most 5 GiB
_MIN_PART_BYTES = 5 * MiB
_MAX_PART_BYTES = 5 * 1024 * MiB
#: user-metadata name of the SHA-256 (boto3 lower-cases metadata names on the way back)
CHECKSUM_METADATA = "sha256"
#: DeleteObjects takes at most this many keys per request
_DELETE_BATCH = 1000
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3 store. Fields left None fall back to boto3's usual chain (env, ~/.aws, IAM role)."""

    endpoint_url: str | None = None  # None = AWS; set for Ceph RGW, Garage, MinIO forks, moto...
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    multipart_threshold_bytes: int = 8 * MiB
    multipart_chunk_bytes: int = 8 * MiB
    max_concurrency: int = 8
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    #: total attempts per request (first try included), botocore "standard" retry mode
    max_attempts: int = 5
    #: keys per ListObjectsV2 request (S3 returns at most 1000)
    list_page_size: int = 1000

    def __post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ConfigError("set both the S3 access key id and the secret access key, or neither")
        if not _MIN_PART_BYTES <= self.multipart_chunk_bytes <= _MAX_PART_BYTES:
            raise ConfigError(
                f"multipart_chunk_bytes={self.multipart_chunk_bytes} is outside S3's part-size limits "
                f"({_MIN_PART_BYTES}..{_MAX_PART_BYTES} bytes)"
            )
        if min(self.multipart_threshold_bytes, self.max_concurrency, self.max_attempts, self.list_page_size) < 1:
            raise ConfigError(
                "multipart_threshold_bytes, max_concurrency, max_attempts and list_page_size must be >= 1"
            )
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ConfigError("S3 timeouts must be positive")

    @property
    def endpoint_description(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"


@functools.cache
def _shared_loader() -> botocore.loaders.Loader:
    """One botocore data loader per process, built on first use.

    NOTE: each botocore session otherwise re-reads and parses the S3 service model (~0.1-0.3 s per backend);
    the loader only caches those read-only JSON models, so sharing it shares no credentials or state.
    """
    return botocore.loaders.create_loader()


def _require_absent(params: dict[str, Any], **_kwargs: Any) -> None:
    """botocore event handler: make PutObject / CompleteMultipartUpload create-only (If-None-Match: *)."""
    params["IfNoneMatch"] = "*"


class S3Backend:
    """StorageBackend over one bucket, optionally under a key prefix (keys passed in are relative to it).

    Builds its own boto3 clients (thread-safe; one backend can be shared by threads). Call `close` when done.
    """

    def __init__(self, bucket: str, prefix: str = "", options: S3Options | None = None) -> None:
        if not _BUCKET_NAME.match(bucket):
            raise ConfigError(
                f"{bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.' or '-'): "
                "fix PLATFORM_STORE_URL"
            )
        stripped = prefix.strip("/")
        try:
            validate_prefix(f"{stripped}/" if stripped else "")
        except InputError as exc:
            raise ConfigError(f"invalid key prefix {prefix!r} for bucket {bucket!r}: {exc}") from exc
        self.bucket = bucket
        self.prefix = f"{stripped}/" if stripped else ""
        self.options = options or S3Options()
        self.url = f"s3://{bucket}/{stripped}" if stripped else f"s3://{bucket}"
        core_session = botocore.session.get_session()  # a new session, not a global one
        core_session.register_component("data_loader", _shared_loader())
        self._session = boto3.session.Session(
            botocore_session=core_session,
            aws_access_key_id=self.options.access_key_id,
            aws_secret_access_key=self.options.secret_access_key,
            region_name=self.options.region,
        )
        self._client = self._new_client()
        self._create_only: Any | None = None
        self._create_only_lock = threading.Lock()
        self._bucket_verified = False
        self._transfer = TransferConfig(
            multipart_threshold=self.options.multipart_threshold_bytes,
            multipart_chunksize=self.options.multipart_chunk_bytes,
            max_concurrency=self.options.max_concurrency,
            # NOTE: the CRT transfer client ignores a custom endpoint_url and silently talks to the real AWS
            # regional endpoint instead (boto/boto3#4839), and it only honours a few of these settings.
            # "classic" (s3transfer) always uses our client, hence our endpoint, retries and checksum policy.
            preferred_transfer_client="classic",
        )

    @classmethod
    def from_url(cls, url: str, options: object | None = None) -> S3Backend:
        """Open `s3://bucket` or `s3://bucket/some/prefix` (the registry's factory)."""
        if options is not None and not isinstance(options, S3Options):
            raise ConfigError(f"{url}: expected S3Options, got {type(options).__name__}")
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"malformed S3 store URL {redact_url(url)!r}: use s3://bucket or s3://bucket/key/prefix")
        try:
            port = parts.port
        except ValueError:  # "s3://bucket:abc"
            port = -1
        if parts.username or parts.password or port is not None:
            raise ConfigError(
                f"S3 store URL {redact_url(url)!r} carries credentials or a port: put the bucket alone in "
                "the URL, and the endpoint and keys in the store settings"
            )
        return cls(parts.netloc, parts.path, options)

    def __repr__(self) -> str:
        return f"S3Backend({self.url!r}, endpoint={self.options.endpoint_description!r})"

    def close(self) -> None:
        """Close the HTTP connection pools of the clients this backend built."""
        self._client.close()
        if self._create_only is not None:
            self._create_only.close()

    # -- clients and error translation -------------------------------------------------------------------

    def _new_client(self) -> Any:
        options = self.options
        config = Config(
            retries={"mode": "standard", "max_attempts": options.max_attempts},
            # NOTE: since botocore 1.36 both default to "when_supported", which adds CRC checksums (and
            # aws-chunked trailers) that many S3-compatible stores reject (XAmzContentSHA256Mismatch,
            # MissingContentLength). Integrity is ours anyway: the sha256 metadata, verified on download.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.read_timeout_s,
            max_pool_connections=max(10, options.max_concurrency),
            # virtual-host addressing needs bucket.host DNS, which custom endpoints rarely have
            s3={"addressing_style": "path"} if options.endpoint_url else None,
        )
        return self._session.client("s3", endpoint_url=options.endpoint_url, config=config)

    def _create_only_client(self) -> Any:
        """A second client whose every PutObject / CompleteMultipartUpload carries If-None-Match: *.

        s3transfer does not accept IfNoneMatch in upload_file's ExtraArgs, so the header is added by a
        botocore `before-parameter-build` hook on a client used only for create-only uploads.
        """
        with self._create_only_lock:
            if self._create_only is None:
                client = self._new_client()
                client.meta.events.register("before-parameter-build.s3.PutObject", _require_absent)
                client.meta.events.register("before-parameter-build.s3.CompleteMultipartUpload", _require_absent)
                self._create_only = client
            return self._create_only

    def _full_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _translate(self, exc: BaseException, key: str | None = None, *, starting: bool = False) -> PlatformError:
        return translate_s3_error(
            exc,
            store_url=self.url,
            bucket=self.bucket,
            endpoint=self.options.endpoint_description,
            key=key,
            starting=starting,
        )

    def _head_object(self, key: str) -> dict[str, Any] | None:
        """HeadObject response for `key`, or None when it does not exist (bucket existence checked)."""
        full_key = self._full_key(key)
        try:
            response: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=full_key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 404:
                raise self._translate(exc, key) from unwrap(exc)
            # NOTE: a HEAD response has no body, so a missing bucket also looks like a bare 404: tell the
            # two apart once per backend, so a wrong bucket name is a ConfigError and not "no such key".
            self._require_bucket()
            return None
        except S3_ERRORS as exc:
            raise self._translate(exc, key) from unwrap(exc)
        return response

    def _require_bucket(self) -> None:
        if not self._bucket_verified:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except S3_ERRORS as exc:
                raise self._translate(exc) from unwrap(exc)
            self._bucket_verified = True

    def _info(self, key: str, head: dict[str, Any]) -> ObjectInfo:
        checksum = head.get("Metadata", {}).get(CHECKSUM_METADATA)
        return ObjectInfo(key, int(head["ContentLength"]), checksum, head.get("LastModified"))

    # -- StorageBackend -----------------------------------------------------------------------------------

    def check_access(self) -> None:
        """HeadBucket; ConfigError if the bucket is missing, access is refused or the endpoint unreachable."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except S3_ERRORS as exc:
            raise self._translate(exc, starting=True) from unwrap(exc)
        self._bucket_verified = True

    def put_file(
        self, local_path: Path, key: str, *, overwrite: bool = True, progress: ByteProgress | None = None
    ) -> ObjectInfo:
        """Upload `local_path` (multipart above the threshold) with its SHA-256 as metadata.

        With `overwrite=False`: a HeadObject check first (fails fast, before uploading gigabytes), then the
        upload itself is conditional (If-None-Match: * on PutObject / CompleteMultipartUpload), so a writer
        that creates the key in between makes this put fail with AlreadyExists instead of being replaced.
        NOTE: the remaining race is on stores that ignore If-None-Match (older MinIO answered 304, some
        S3-compatibles drop the header): there the head check is the only guard and the last writer wins.
        """
        full_key = self._full_key(key)
        if not local_path.is_file():
            raise InputError(f"cannot upload {local_path}: it is not an existing file")
        if not overwrite and self._head_object(key) is not None:
            raise exists_error(self.url, key)
        checksum = sha256_file(local_path)
        size = local_path.stat().st_size
        client = self._client if overwrite else self._create_only_client()
        try:
            client.upload_file(
                os.fspath(local_path),
                self.bucket,
                full_key,
                ExtraArgs={"Metadata": {CHECKSUM_METADATA: checksum}},
                Callback=progress,
                Config=self._transfer,
            )
        except S3_ERRORS as exc:
            raise self._translate(exc, key) from unwrap(exc)
        return ObjectInfo(key, size, checksum)

    def get_file(self, key: str, local_path: Path, *, progress: ByteProgress | None = None) -> ObjectInfo:
        """Download to a temp file beside `local_path`, verify the sha256 metadata, then rename into place.

        A mismatch raises ChecksumMismatch and leaves nothing at `local_path` (nor any temp file). If the
        object was replaced while downloading (its ETag changed), TransientError asks for a retry instead.
        """
        head = self._head_object(key)
        if head is None:
            raise AssetNotFound(f"object {key!r} does not exist in {self.url}: check the key or upload it")
        info = self._info(key, head)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            atomic = stack.enter_context(AtomicFile(local_path))
            try:
                self._client.download_fileobj(
                    self.bucket, self._full_key(key), atomic.file, Callback=progress, Config=self._transfer
                )
            except S3_ERRORS as exc:
                raise self._translate(exc, key) from unwrap(exc)
            atomic.sync()
            actual = sha256_file(atomic.path)
            if info.checksum is not None and actual != info.checksum:
                now = self._head_object(key)
                if now is None or now.get("ETag") != head.get("ETag"):
                    raise TransientError(f"object {key!r} in {self.url} changed while it was being downloaded; retry")
                raise ChecksumMismatch(
                    f"object {key!r} in {self.url} is corrupt: expected sha256 {info.checksum}, read "
                    f"{actual}; nothing was written to {local_path}. Re-upload the object."
                )
            atomic.commit()
        return ObjectInfo(key, atomic.target.stat().st_size, actual, info.modified_at)

    def head(self, key: str) -> ObjectInfo | None:
        head = self._head_object(key)
        return None if head is None else self._info(key, head)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under `prefix` in key order, paginated.

        `checksum` is None: ListObjectsV2 does not return user metadata, and a HeadObject per key would make
        listing cost one request per object. Zero-byte "folder/" marker objects (made by S3 consoles) are
        not objects in the platform's sense and are skipped, as a folder store has no such thing.
        """
        for entry in self._list_entries(prefix):
            if not entry.key.endswith("/"):
                yield entry

    def _list_entries(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every entry under `prefix`, folder markers included."""
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=self.prefix + prefix,
                PaginationConfig={"PageSize": self.options.list_page_size},
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    key = entry["Key"][len(self.prefix) :]
                    yield ObjectInfo(key, int(entry["Size"]), None, entry.get("LastModified"))
        except S3_ERRORS as exc:
            raise self._translate(exc, prefix or None) from unwrap(exc)

    def copy(self, source_key: str, target_key: str) -> ObjectInfo:
        """Server-side copy (multipart above the threshold); the sha256 metadata travels with the bytes."""
        source = self._head_object(source_key)
        if source is None:
            raise AssetNotFound(
                f"object {source_key!r} does not exist in {self.url}: nothing to copy to {target_key!r}"
            )
        try:
            self._client.copy(
                {"Bucket": self.bucket, "Key": self._full_key(source_key)},
                self.bucket,
                self._full_key(target_key),
                Config=self._transfer,
            )
        except S3_ERRORS as exc:
            raise self._translate(exc, source_key) from unwrap(exc)
        target = self._head_object(target_key)
        if target is None:  # deleted by someone else right after the copy
            raise TransientError(f"object {target_key!r} in {self.url} vanished right after being copied; retry")
        return self._info(target_key, target)

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._full_key(key))
        except S3_ERRORS as exc:
            raise self._translate(exc, key) from unwrap(exc)

    def delete_prefix(self, prefix: str) -> builtins.list[str]:  # `list` is a method name here
        """Delete every object under `prefix` in batches of 1000; return the removed keys.

        An empty prefix is refused (InputError): wiping a whole store is not something to do by accident.
        """
        validate_prefix(prefix)
        if prefix == "":
            raise InputError("refusing to delete every object in the store: pass a non-empty prefix")
        keys = [info.key for info in self._list_entries(prefix)]  # folder markers go too
        removed: list[str] = []
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            try:
                response = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.prefix + key} for key in batch], "Quiet": True},
                )
            except S3_ERRORS as exc:
                raise self._translate(exc, prefix) from unwrap(exc)
            errors = response.get("Errors", [])
            failed = {entry["Key"][len(self.prefix) :] for entry in errors}
            removed.extend(key for key in batch if key not in failed)
            if errors:
                first = errors[0]
                code = str(first.get("Code", ""))
                message = (
                    f"deleted {len(removed)} of {len(keys)} objects under {self.url}/{prefix}; "
                    f"{len(errors)} failed, e.g. {first.get('Key')!r}: {code}: {first.get('Message')}"
                )
                if code in CREDENTIAL_CODES:
                    raise ConfigError(f"{message}; check that the store's credentials may delete objects")
                raise TransientError(f"{message}; retry")
        return [key for key in removed if not key.endswith("/")]
