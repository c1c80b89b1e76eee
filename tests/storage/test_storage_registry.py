"""open_backend: store URLs to backends, helpful errors for bad URLs, no boto3 until an s3:// URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from twinplatform.errors import ConfigError
from twinplatform.storage.local import LocalBackend
from twinplatform.storage.registry import open_backend
from twinplatform.storage.s3 import S3Backend, S3Options

OFFLINE = S3Options(endpoint_url="http://127.0.0.1:9", region="us-east-1")


def test_file_url_opens_a_local_backend(tmp_path: Path) -> None:
    backend = open_backend(tmp_path.as_uri())

    assert isinstance(backend, LocalBackend)
    assert backend.url == tmp_path.as_uri()


@pytest.mark.parametrize(
    ("url", "bucket", "prefix", "canonical"),
    [
        ("s3://twins", "twins", "", "s3://twins"),
        ("s3://twins/", "twins", "", "s3://twins"),
        ("s3://twins/prod/eu", "twins", "prod/eu/", "s3://twins/prod/eu"),
        ("s3://twins/prod/eu/", "twins", "prod/eu/", "s3://twins/prod/eu"),
    ],
)
def test_s3_urls_open_an_s3_backend(url: str, bucket: str, prefix: str, canonical: str) -> None:
    backend = open_backend(url, OFFLINE)

    assert isinstance(backend, S3Backend)
    try:
        assert (backend.bucket, backend.prefix, backend.url) == (bucket, prefix, canonical)
        assert backend.options is OFFLINE
    finally:
        backend.close()


@pytest.mark.parametrize(
    "url",
    [
        "gs://bucket",
        "/srv/twins",
        "twins",
        "",
        "file://relative/dir",
        "s3://",
        "s3://Bad_Bucket",
        "s3://key:secret@twins",
        "s3://twins/../etc",
        "s3://twins?region=eu",
    ],
)
def test_bad_urls_are_config_errors_listing_the_supported_schemes(url: str) -> None:
    with pytest.raises(ConfigError, match=r"file://, s3://"):
        open_backend(url, OFFLINE)


@pytest.mark.parametrize("url", ["s3://key:very-secret@twins", "s3://key:very-secret@", "gs://k:very-secret@b/x"])
def test_credentials_in_a_url_are_not_echoed(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        open_backend(url, OFFLINE)

    assert "very-secret" not in str(raised.value)
    assert "***@" in str(raised.value)


def test_importing_the_registry_does_not_import_boto3() -> None:
    code = (
        "import sys, twinplatform.storage, twinplatform.storage.registry, twinplatform.storage.mirror\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(root / "platform")}, timeout=60)
