"""Translating boto3/botocore/s3transfer failures into the platform's error tree (the S3 seam's one table).

404 / NoSuchKey                            -> AssetNotFound  (names the key)
NoSuchBucket, or 404 on a bucket request   -> ConfigError    (names the bucket and how to create it)
403 / AccessDenied / InvalidAccessKeyId
  / SignatureDoesNotMatch / no credentials -> ConfigError    (names the credentials)
412 PreconditionFailed (create-only put)   -> AlreadyExists
connection errors, timeouts, 5xx, SlowDown,
  409 ConditionalRequestConflict, NoSuchUpload -> TransientError (ConfigError at start-up: check_access)
anything else                              -> PlatformError  (code and message kept)
"""

from __future__ import annotations

from typing import cast

import boto3.exceptions
import s3transfer.exceptions
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from twinplatform.errors import AlreadyExists, AssetNotFound, ConfigError, PlatformError, TransientError

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
CREDENTIAL_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "ConditionalRequestConflict",  # 409: a concurrent conditional write; retrying resolves it
        "InternalError",
        "NoSuchUpload",  # 404 for a multipart upload aborted underneath us (e.g. a lifecycle rule): re-upload
        "OperationAborted",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
    }
)
#: every exception type boto3 and s3transfer raise for a failed request
S3_ERRORS = (
    ClientError,
    BotoCoreError,
    boto3.exceptions.Boto3Error,
    s3transfer.exceptions.RetriesExceededError,
)


def unwrap(exc: BaseException) -> BaseException:
    """The underlying botocore error inside boto3/s3transfer wrappers (chained as `__cause__`, so
    tracebacks show the structured S3 error rather than a wrapper's flattened message)."""
    if isinstance(exc, boto3.exceptions.S3UploadFailedError) and isinstance(exc.__context__, ClientError):
        # NOTE: upload_file re-raises ClientError as S3UploadFailedError *without* `from`, so the structured
        # error survives only as the implicit __context__.
        return cast(BaseException, exc.__context__)
    if isinstance(exc, (boto3.exceptions.RetriesExceededError, s3transfer.exceptions.RetriesExceededError)):
        last = exc.last_exception
        if isinstance(last, BaseException):
            return last
    return exc


def missing_bucket_error(bucket: str, endpoint: str) -> ConfigError:
    return ConfigError(
        f"bucket {bucket!r} does not exist at {endpoint}: create it (aws s3 mb s3://{bucket}) or fix PLATFORM_STORE_URL"
    )


def exists_error(store_url: str, key: str | None) -> AlreadyExists:
    return AlreadyExists(
        f"object {key!r} already exists in {store_url}: replace it explicitly (overwrite=True / --replace) "
        "or use another key"
    )


def translate_s3_error(
    exc: BaseException,
    *,
    store_url: str,
    bucket: str,
    endpoint: str,
    key: str | None = None,
    starting: bool = False,
) -> PlatformError:
    """The platform error for a failed request on `key` (None: a bucket-level request) in `store_url`.

    `endpoint` describes where the store lives (for messages); `starting`: the failure comes from the
    start-up check, where an unreachable endpoint is a configuration problem, not a passing one.
    Raise the result `from unwrap(exc)`.
    """
    exc = unwrap(exc)
    where = f"{store_url}/{key}" if key is not None else store_url
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        detail = f"{code or 'HTTP ' + str(status)}: {error.get('Message') or 'no message'}"
        if code == "NoSuchBucket" or (key is None and (code in NOT_FOUND_CODES or status == 404)):
            return missing_bucket_error(bucket, endpoint)
        if code in TRANSIENT_CODES:
            return TransientError(f"{endpoint} failed on {where} ({detail}); retry later")
        if code in CREDENTIAL_CODES or status == 403:
            return ConfigError(
                f"{endpoint} refused access to {where} ({detail}): check the store's access key id and "
                "secret access key, and that they may read and write this bucket"
            )
        if code in NOT_FOUND_CODES or status == 404:
            return AssetNotFound(f"object {key!r} does not exist in {store_url}: check the key or upload it")
        if code == "PreconditionFailed" or status == 412:
            return exists_error(store_url, key)
        if status >= 500:
            return TransientError(f"{endpoint} failed on {where} ({detail}); retry later")
        return PlatformError(f"S3 request on {where} failed ({detail}, HTTP {status})")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return ConfigError(
            f"no usable S3 credentials for {store_url} ({exc}): set the store's access key id and secret "
            "access key, or the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables"
        )
    if isinstance(exc, NoRegionError):
        return ConfigError(f"no AWS region configured for {store_url}: set the store's region")
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        if starting:
            return ConfigError(
                f"cannot reach the S3 endpoint {endpoint} for {store_url} ({exc}): check the endpoint URL "
                "and that the server is up"
            )
        return TransientError(f"network error talking to {endpoint} about {where} ({exc}); retry later")
    return PlatformError(f"S3 request on {where} failed: {exc}")
