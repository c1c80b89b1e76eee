"""Reaching the machine's real services from tests, and the rule for when they are absent.

Under CI (CI=true) or with PLATFORM_REQUIRE_SERVICES=1 an unreachable service FAILS the test run; elsewhere the
tests that need it are skipped with a reason (a user's fresh machine has no PostgreSQL or Redis).
"""

from __future__ import annotations

import os
import socket

import pytest


def services_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("PLATFORM_REQUIRE_SERVICES") == "1"


def unavailable(service: str, detail: str) -> None:
    """Fail (CI) or skip (elsewhere) because `service` cannot be reached."""
    message = f"{service} is not reachable ({detail})"
    if services_required():
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(f"{message}; start it to run these tests")


def port_open(host: str, port: int, timeout_s: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def postgres_admin_url() -> str:
    return os.environ.get("PLATFORM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
