"""The job engine's bookkeeping per stage against a bare Celery task round trip, on the same broker, in one run.

Usage: .venv/bin/python benchmarks/engine_overhead.py [--jobs 300] [--latency-samples 40]
Needs the machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379); uses a throwaway database and
Redis db 12. Both sides run a worker subprocess with 2 prefork processes, acks_late and prefetch 1.

- bare Celery: `noop.delay().get()` round trip (median over samples), and N tasks sent at once until the last
  result is back.
- engine: a one-stage job whose stage does nothing, so what remains is claim, lease, heartbeat thread,
  input resolution, fingerprint, skip check, fenced commit, completion, event log and outbox: measured from the
  job's created_at to finished_at as recorded in the database (no client polling in the figure); and the
  throughput of the two worker processes from a full queue: N jobs recorded first, then all dispatched at once,
  timed until the last finishes. The client's submission cost (one transaction per job) is reported apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from sqlalchemy import create_engine, select, text

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.cluster import Cluster  # noqa: E402
from tests.support.cluster_fixtures import make_cluster  # noqa: E402
from twinplatform.db.models import Job  # noqa: E402

BROKER = "redis://127.0.0.1:6379/12"
ADMIN_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def bare_celery(jobs: int, samples: int, work_dir: Path) -> tuple[float, float]:
    env = dict(os.environ, BENCH_BROKER_URL=BROKER, PYTHONPATH=str(REPO_ROOT))
    log = (work_dir / "bare-worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.bare_celery_app",
            "worker",
            "--concurrency",
            "2",
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    os.environ["BENCH_BROKER_URL"] = BROKER
    from benchmarks.bare_celery_app import noop

    try:
        noop.delay().get(timeout=60)  # warm up: worker ready, connections open
        latencies = []
        for _ in range(samples):
            started = time.perf_counter()
            noop.delay().get(timeout=30)
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()  # from the first send, as on the engine side
        results = [noop.delay() for _ in range(jobs)]
        for result in results:
            result.get(timeout=120)
        throughput = jobs / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
    return statistics.median(latencies), throughput


def engine(jobs: int, samples: int, work_dir: Path, database_url: str) -> tuple[float, float, float]:
    cluster: Cluster = make_cluster(work_dir, database_url, BROKER, lease_s="30", heartbeat_s="5")
    try:
        cluster.make_twin("bench")
        cluster.start_worker(concurrency=2, reaper=False)
        warm = _submit(cluster, 1, "warm")
        _wait(cluster, warm)
        latencies = []
        for index in range(samples):
            job_ids = _submit(cluster, 1, f"lat{index}")
            _wait(cluster, job_ids)
            latencies.extend(_durations(cluster, job_ids))
        # Throughput of the workers from a full queue: every job is recorded first (its dispatch pending in
        # the outbox), then one relay sends them all and the clock runs until the last one has finished.
        started = time.perf_counter()
        job_ids = _submit(cluster, jobs, "thr", send=False)
        submitted = time.perf_counter() - started
        started = time.perf_counter()
        _relay(cluster, jobs)
        _wait(cluster, job_ids)
        throughput = jobs / (time.perf_counter() - started)
    finally:
        cluster.close()
    return statistics.median(latencies), throughput, submitted / jobs


_SENDER: list = []


def _submit(cluster: Cluster, count: int, tag: str, *, send: bool = True) -> list[str]:
    from pipelines.registry import load_pipeline
    from twinplatform.jobs.submit import submit_job

    pipeline = load_pipeline("kit", "noop")
    ids = [
        submit_job(cluster.runtime, pipeline, "bench", params={"tag": tag, "n": i}, executor="celery").job_id
        for i in range(count)
    ]
    if send:
        _relay(cluster, count)
    return ids


def _relay(cluster: Cluster, count: int) -> None:
    from twinplatform.jobs.outbox import relay

    if not _SENDER:
        _SENDER.append(cluster.sender())  # one Celery app and broker connection, as a long-lived client has
    relay(cluster.runtime.sessions, _SENDER[0], limit=count + 10)


def _wait(cluster: Cluster, job_ids: list[str], timeout_s: float = 300) -> None:
    states = cluster.wait_for(job_ids, timeout_s)
    bad = {state for state in states.values() if state != "succeeded"}
    if bad:
        raise SystemExit(f"jobs did not succeed: {bad}")


def _durations(cluster: Cluster, job_ids: list[str]) -> list[float]:
    with cluster.runtime.sessions() as session:
        jobs = session.scalars(select(Job).where(Job.id.in_(job_ids))).all()
        return [(job.finished_at - job.created_at).total_seconds() for job in jobs if job.finished_at]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--latency-samples", type=int, default=40)
    args = parser.parse_args()
    redis.Redis.from_url(BROKER).flushdb()
    admin = create_engine(ADMIN_DB, isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "bare").mkdir()
            (work / "engine").mkdir()
            bare_latency, bare_rate = bare_celery(args.jobs, args.latency_samples, work / "bare")
            redis.Redis.from_url(BROKER).flushdb()
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
            engine_latency, engine_rate, submit_s = engine(args.jobs, args.latency_samples, work / "engine", url)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("| measure | bare Celery task | platform stage (no-op) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| end-to-end latency, one at a time (median) | {bare_latency * 1000:.1f} ms | "
        f"{engine_latency * 1000:.1f} ms | {engine_latency / bare_latency:.1f}x |"
    )
    print(
        f"| throughput, {args.jobs} at once, 2 worker processes | {bare_rate:.0f}/s | {engine_rate:.0f}/s | "
        f"{bare_rate / engine_rate:.1f}x |"
    )
    print(
        f"engine overhead per stage: {(engine_latency - bare_latency) * 1000:.1f} ms over the bare round trip; "
        f"submission {submit_s * 1000:.1f} ms per job (client side, one transaction each)"
    )


if __name__ == "__main__":
    main()
