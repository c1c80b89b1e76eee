"""pytest fixtures for Celery-mode tests: a cluster on a fresh PostgreSQL database and the machine's Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.services import port_open, unavailable
from twinplatform.db import migrate
from twinplatform.db.session import make_engine

#: a Redis database index of its own, so tests never see the queues of anything else on the machine's Redis
TEST_REDIS_URL = os.environ.get("PLATFORM_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")

TEST_RABBITMQ_URL = os.environ.get("PLATFORM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")

#: short leases so faults recover within seconds in tests (the fault table uses the production defaults)
FAST_SETTINGS = {
    "lease_s": "6",
    "heartbeat_s": "1",
    "reaper_interval_s": "1",
    "redispatch_after_s": "10",
    "retry_backoff_s": "0.2",
    "db_outage_tolerance_s": "60",
}


def machine_redis_url() -> str:
    if not port_open("127.0.0.1", int(TEST_REDIS_URL.rsplit(":", 1)[1].split("/")[0])):
        unavailable("Redis", TEST_REDIS_URL)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return TEST_REDIS_URL


def machine_rabbitmq_url() -> str:
    """The machine's RabbitMQ, with the platform's queues emptied (they are declared by the first worker)."""
    from kombu import Connection

    try:
        with Connection(TEST_RABBITMQ_URL, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.channel()
            for queue in ("cpu", "gpu-1"):
                try:
                    channel.queue_purge(queue)
                except Exception:  # noqa: BLE001  (a queue that was never declared has nothing to purge)
                    channel = connection.channel()
    except OSError as exc:
        unavailable("RabbitMQ", f"{TEST_RABBITMQ_URL}: {exc}")
    return TEST_RABBITMQ_URL


def make_cluster(tmp_path: Path, database_url: str, broker_url: str, **overrides: str) -> Cluster:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    (tmp_path / "store").mkdir()
    settings = {
        "database_url": database_url,
        "store_url": (tmp_path / "store").resolve().as_uri(),
        "mirror_dir": str(tmp_path / "mirror"),
        "data_dir": str(tmp_path / "data"),
        "broker_url": broker_url,
        **FAST_SETTINGS,
        **overrides,
    }
    return Cluster(tmp_path, settings)


@pytest.fixture
def rabbitmq_cluster(tmp_path: Path, fresh_postgres_url: str) -> Iterator[Cluster]:
    """A cluster on the machine's PostgreSQL and RabbitMQ."""
    deployment = make_cluster(tmp_path, fresh_postgres_url, machine_rabbitmq_url())
    yield deployment
    deployment.close()


@pytest.fixture
def cluster(tmp_path: Path, fresh_postgres_url: str) -> Iterator[Cluster]:
    """A cluster on the machine's PostgreSQL and Redis; its workers are killed at the end."""
    deployment = make_cluster(tmp_path, fresh_postgres_url, machine_redis_url())
    yield deployment
    deployment.close()
