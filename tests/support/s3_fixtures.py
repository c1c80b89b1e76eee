"""pytest fixtures for S3 tests: one moto server per session, a fresh bucket per test.

Load with `pytest_plugins = ["tests.support.s3_fixtures"]` in the top-level tests/conftest.py.
Credentials and region travel in `S3Options` (never via os.environ), so nothing leaks into other tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tests.support.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, start_moto_server
from twinplatform.storage.s3 import S3Options


@dataclass(frozen=True)
class MotoBucket:
    """A bucket that exists on the session's moto server, and how to reach it."""

    name: str
    endpoint_url: str

    def options(self, **overrides: Any) -> S3Options:
        """S3Options for the moto endpoint; keyword arguments override single fields."""
        fields: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
        }
        fields.update(overrides)
        return S3Options(**fields)

    def plain_client(self) -> Any:
        """A plain boto3 client (no platform code) for checking what actually landed in the bucket."""
        return plain_client(self.endpoint_url)


def plain_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of a moto S3 server that lives for the whole test session."""
    server, endpoint_url = start_moto_server()
    try:
        yield endpoint_url
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[MotoBucket]:
    """A fresh, empty bucket per test (unique name, so tests never see each other's objects)."""
    bucket = MotoBucket(name=f"test-{uuid.uuid4().hex[:20]}", endpoint_url=s3_endpoint)
    client = bucket.plain_client()
    try:
        client.create_bucket(Bucket=bucket.name)
        yield bucket
    finally:
        client.close()


@pytest.fixture
def enforce_moto_auth(s3_endpoint: str) -> Iterator[None]:
    """Make the moto server check credentials (it accepts anything by default) for one test."""
    # moto's documented switch: after this many unauthenticated requests, authentication is enforced
    response = requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    previous = response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    try:
        yield
    finally:
        requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=str(previous).encode(), timeout=10)
