"""The Celery path with real worker processes on the machine's Redis and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.support.cluster import Cluster, worker_log_tail
from twinplatform.db.models import Outbox, StageRun
from twinplatform.services.jobs import cancel_job, get_job, retry_job
from twinplatform.worker.client import send_pending

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]


def test_jobs_run_on_a_worker_through_the_outbox(cluster: Cluster) -> None:
    twin = cluster.make_twin()
    cluster.start_worker()
    job_ids = cluster.submit(twin, 3)
    states = cluster.wait_for(job_ids, 60)
    assert set(states.values()) == {"succeeded"}, worker_log_tail(cluster)
    with cluster.runtime.sessions() as session:
        rows = session.scalars(select(Outbox).where(Outbox.job_id.in_(job_ids))).all()
        assert len(rows) == 6 and all(row.sent_at is not None for row in rows)  # one dispatch per stage
        runs = session.scalars(select(StageRun).where(StageRun.job_id.in_(job_ids))).all()
        assert {run.attempt for run in runs} == {1} and all(run.commit_attempt == 1 for run in runs)
        assert all(run.worker and run.worker.split(":")[0] for run in runs)
    scratch = list(cluster.runtime.backend.list("scratch/"))
    assert scratch == []  # promoted outputs leave nothing behind


def test_a_dispatch_left_in_the_outbox_is_sent_by_the_reaper(cluster: Cluster) -> None:
    twin = cluster.make_twin()
    job_ids = cluster.submit(twin, 2, send=False)  # as if the submitting process died right after commit
    cluster.start_worker()
    assert set(cluster.wait_for(job_ids, 60).values()) == {"succeeded"}, worker_log_tail(cluster)


def test_transient_failures_are_retried_by_workers(cluster: Cluster) -> None:
    twin = cluster.make_twin()
    cluster.start_worker()
    counter = cluster.work_dir / "count"
    job_ids = cluster.submit(twin, 1, flaky_stage="second", flaky_failures=2, counter_file=str(counter))
    assert cluster.wait_for(job_ids, 60) == {job_ids[0]: "succeeded"}, worker_log_tail(cluster)
    view = get_job(cluster.runtime.sessions, job_ids[0])
    assert [(s.stage, s.attempt) for s in view.stages] == [("first", 1), ("second", 3)]


def test_cancel_a_running_job_and_retry_it(cluster: Cluster) -> None:
    twin = cluster.make_twin()
    cluster.start_worker()
    (job_id,) = cluster.submit(twin, 1, slow_stage="first", slow_s=30)
    cluster.wait_until_running([job_id])
    started = time.monotonic()
    cancel_job(cluster.runtime.sessions, job_id)
    assert cluster.wait_for([job_id], 30) == {job_id: "cancelled"}
    deadline = time.monotonic() + 15
    while get_job(cluster.runtime.sessions, job_id).stages[0].state != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert get_job(cluster.runtime.sessions, job_id).stages[0].state == "cancelled"
    assert time.monotonic() - started < 15  # noticed at a heartbeat, long before the 30 s stage would end
    with cluster.runtime.sessions() as session, session.begin():
        from twinplatform.db.models import Job

        session.get_one(Job, job_id).params = {"n": 0}  # the retry runs the stage without the slow part
    assert retry_job(cluster.runtime.sessions, job_id) == ["first", "second"]
    send_pending(_settings(cluster), cluster.runtime)
    assert cluster.wait_for([job_id], 60) == {job_id: "succeeded"}, worker_log_tail(cluster)


def test_higher_priority_jobs_run_first(cluster: Cluster) -> None:
    from pipelines.registry import load_pipeline
    from twinplatform.jobs.outbox import relay
    from twinplatform.jobs.submit import submit_job

    twin = cluster.make_twin()
    pipeline = load_pipeline("kit", "preprocess")
    low = [
        submit_job(cluster.runtime, pipeline, twin, params={"n": i}, executor="celery", priority=0).job_id
        for i in range(4)
    ]
    high = submit_job(cluster.runtime, pipeline, twin, params={"n": 99}, executor="celery", priority=9).job_id
    relay(cluster.runtime.sessions, cluster.sender())
    cluster.start_worker(concurrency=1)
    assert set(cluster.wait_for([*low, high], 90).values()) == {"succeeded"}, worker_log_tail(cluster)
    started = {job_id: get_job(cluster.runtime.sessions, job_id).started_at for job_id in [*low, high]}
    assert started[high] == min(started.values())


def test_a_stage_whose_worker_keeps_dying_fails_with_that_reason(cluster: Cluster) -> None:
    import os
    import signal

    twin = cluster.make_twin()
    cluster.start_worker()
    (job_id,) = cluster.submit(twin, 1, slow_stage="first", slow_s=30)
    for attempt in (1, 2, 3):
        running = cluster.wait_until_running([job_id], timeout_s=60, min_attempt=attempt)
        os.kill(int((running[0].worker or ":0").rpartition(":")[2]), signal.SIGKILL)
    assert cluster.wait_for([job_id], 60) == {job_id: "failed"}, worker_log_tail(cluster)
    view = get_job(cluster.runtime.sessions, job_id)
    assert view.error_kind == "worker_lost" and "died 3 times" in (view.error or "")


def _settings(cluster: Cluster):  # type: ignore[no-untyped-def]
    from twinplatform.config import Settings

    return Settings(**cluster.settings)  # type: ignore[arg-type]


def test_the_periodic_reap_task_sends_what_the_outbox_holds(cluster: Cluster) -> None:
    from twinplatform.config import Settings
    from twinplatform.worker.app import TASK_REAP, create_app

    twin = cluster.make_twin()
    job_ids = cluster.submit(twin, 2, send=False)  # dispatches left in the outbox
    cluster.start_worker(reaper=False)  # no reaper process: only the task (as `celery beat` would send it)
    time.sleep(2)
    assert set(cluster.states(job_ids).values()) == {"queued"}
    create_app(Settings(**cluster.settings)).send_task(TASK_REAP, queue="cpu")  # type: ignore[arg-type]
    assert set(cluster.wait_for(job_ids, 60).values()) == {"succeeded"}, worker_log_tail(cluster)
