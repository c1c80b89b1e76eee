"""Run every fault scenario with the production defaults and print the table for docs/faults.md.

Usage: .venv/bin/python benchmarks/fault_table.py [--only NAME ...]
Needs the machine's PostgreSQL and Redis, and redis-server on PATH (for the private Redis that is restarted).
Takes about 6 minutes: the whole-worker kill waits out a real 30 s lease, the Redis restart a real 60 s
re-dispatch interval, the database outage lasts 20 s.

Defaults here are production's (lease 30 s, heartbeat 5 s, reaper every 5 s, re-dispatch after 60 s); the test
suite runs the same scenarios with shorter leases.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import faults  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.cluster_fixtures import TEST_REDIS_URL, make_cluster  # noqa: E402
from tests.support.fault_proxy import FaultProxy, Mode  # noqa: E402
from tests.support.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, start_moto_server  # noqa: E402
from tests.support.service_processes import RedisProcess  # noqa: E402

ADMIN_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PRODUCTION = {
    "lease_s": "30",
    "heartbeat_s": "5",
    "reaper_interval_s": "5",
    "redispatch_after_s": "60",
    "retry_backoff_s": "2",
    "db_outage_tolerance_s": "120",
}


@contextlib.contextmanager
def database() -> Iterator[str]:
    admin = create_engine(ADMIN_DB, isolation_level="AUTOCOMMIT")
    name = f"faults_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def cluster(broker: str = TEST_REDIS_URL, **overrides: str) -> Iterator[Cluster]:
    import redis

    if broker == TEST_REDIS_URL:
        redis.Redis.from_url(broker).flushdb()
    with database() as url, tempfile.TemporaryDirectory() as tmp:
        deployment = make_cluster(Path(tmp), overrides.pop("database_url", url), broker, **{**PRODUCTION, **overrides})
        try:
            yield deployment
        finally:
            deployment.close()


def pool_child_kill() -> faults.ScenarioResult:
    with cluster() as deployment:
        return faults.pool_child_kill(deployment)


def worker_kill_lease() -> faults.ScenarioResult:
    with cluster(detect_dead_local_holders="false") as deployment:
        return faults.worker_kill(deployment, label="kill -9 whole worker (lease path)")


def worker_kill_same_host() -> faults.ScenarioResult:
    with cluster() as deployment:
        return faults.worker_kill(deployment, label="kill -9 whole worker, restarted on the same host")


def redis_restart() -> faults.ScenarioResult:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp), appendonly=False).start()
        try:
            with cluster(broker=server.url) as deployment:
                return faults.broker_restart(deployment, server.restart, timeout_s=300)
        finally:
            server.stop()


def s3_faults() -> faults.ScenarioResult:
    import boto3

    server, endpoint = start_moto_server()
    parts = urlsplit(endpoint)
    proxy = FaultProxy((parts.hostname or "127.0.0.1", parts.port or 80), mode=Mode.HTTP).start()
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    ).create_bucket(Bucket=bucket)
    try:
        with cluster(
            store_url=f"s3://{bucket}",
            s3_endpoint_url=proxy.endpoint_url,
            s3_region=REGION,
            s3_access_key_id=ACCESS_KEY_ID,
            s3_secret_access_key=SECRET_ACCESS_KEY,
        ) as deployment:

            def stats() -> str:
                st = proxy.stats
                return f"{st.http_errors} x 503, {st.resets} resets, {st.delays} delays injected; absorbed by retries"

            return faults.s3_faults(
                deployment,
                lambda: proxy.set_faults(reset_probability=0.1, http_error_probability=0.1, delay_s=(0.0, 0.3), seed=7),
                lambda: proxy.set_faults(),
                stats,
            )
    finally:
        proxy.stop()
        server.stop()


def database_outage() -> faults.ScenarioResult:
    with database() as direct:
        proxy = FaultProxy(("127.0.0.1", 5432), mode=Mode.PASS).start()
        through = direct.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        try:
            with cluster(database_url=through) as deployment:
                deployment.client_overrides["database_url"] = direct
                return faults.database_outage(deployment, proxy.refuse_for, outage_s=20.0)
        finally:
            proxy.stop()


def sigterm() -> faults.ScenarioResult:
    with cluster() as deployment:
        return faults.sigterm_during_stage(deployment)


SCENARIOS: dict[str, Callable[[], faults.ScenarioResult]] = {
    "pool-child-kill": pool_child_kill,
    "worker-kill-lease": worker_kill_lease,
    "worker-kill-same-host": worker_kill_same_host,
    "redis-restart": redis_restart,
    "s3-faults": s3_faults,
    "database-outage": database_outage,
    "sigterm": sigterm,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=None)
    args = parser.parse_args()
    rows = []
    for name in args.only or list(SCENARIOS):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.append(SCENARIOS[name]().row())
    print(faults.TABLE_HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
