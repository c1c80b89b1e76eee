"""Faults in the services the workers depend on: S3 errors, a database outage, a broker that loses its queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from tests.support import faults
from tests.support.cluster import Cluster
from tests.support.cluster_fixtures import machine_redis_url, make_cluster
from tests.support.fault_proxy import FaultProxy, Mode
from tests.support.faults_checks import check
from tests.support.s3_fixtures import MotoBucket
from tests.support.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.support.service_processes import RedisProcess, redis_server_or_skip

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture
def s3_cluster(tmp_path: Path, fresh_postgres_url: str, s3_bucket: MotoBucket) -> Iterator[tuple[Cluster, FaultProxy]]:
    endpoint = urlsplit(s3_bucket.endpoint_url)
    proxy = FaultProxy((endpoint.hostname or "127.0.0.1", endpoint.port or 80), mode=Mode.HTTP).start()
    deployment = make_cluster(
        tmp_path,
        fresh_postgres_url,
        machine_redis_url(),
        store_url=f"s3://{s3_bucket.name}",
        s3_endpoint_url=proxy.endpoint_url,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY_ID,
        s3_secret_access_key=SECRET_ACCESS_KEY,
    )
    yield deployment, proxy
    deployment.close()
    proxy.stop()
    assert proxy.errors == []


def test_s3_resets_5xx_and_slow_responses(s3_cluster: tuple[Cluster, FaultProxy]) -> None:
    cluster, proxy = s3_cluster

    def enable() -> None:
        proxy.set_faults(reset_probability=0.1, http_error_probability=0.1, delay_s=(0.0, 0.3), seed=7)

    def stats() -> str:
        st = proxy.stats
        return f"{st.http_errors} x 503, {st.resets} resets, {st.delays} delays injected"

    result = faults.s3_faults(cluster, enable, lambda: proxy.set_faults(), stats)
    check(result, cluster)
    assert proxy.stats.http_errors > 0 and proxy.stats.resets > 0


@pytest.fixture
def db_proxy_cluster(tmp_path: Path, fresh_postgres_url: str) -> Iterator[tuple[Cluster, FaultProxy]]:
    url = make_url(fresh_postgres_url)
    proxy = FaultProxy((url.host or "127.0.0.1", url.port or 5432), mode=Mode.PASS).start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    deployment = make_cluster(tmp_path, through_proxy, machine_redis_url())
    deployment.client_overrides["database_url"] = fresh_postgres_url  # the test watches the database directly
    yield deployment, proxy
    deployment.close()
    proxy.stop()


def test_database_refuses_connections_for_20_seconds(db_proxy_cluster: tuple[Cluster, FaultProxy]) -> None:
    cluster, proxy = db_proxy_cluster
    cluster.settings["lease_s"] = "30"  # a lease that outlives the outage, as in production (default 30 s)
    cluster.settings["heartbeat_s"] = "2"
    result = faults.database_outage(cluster, proxy.refuse_for, outage_s=20.0)
    check(result, cluster)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    redis_server_or_skip()
    server = RedisProcess(tmp_path / "redis", appendonly=False).start()
    yield server
    server.stop()


def test_redis_restart_loses_queued_messages_and_the_reaper_resends(
    tmp_path: Path, fresh_postgres_url: str, private_redis: RedisProcess
) -> None:
    cluster = make_cluster(tmp_path, fresh_postgres_url, private_redis.url, redispatch_after_s="3")
    try:
        result = faults.broker_restart(cluster, private_redis.restart)
        check(result, cluster, max_recovery_s=15)
    finally:
        cluster.close()
