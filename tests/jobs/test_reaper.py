"""The reaper's rules on a real database (SQLite and PostgreSQL), without a broker: it only writes the outbox."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from pipelines.media.synthetic import make_audio
from pipelines.registry import load_pipeline
from tests.support import kit_pipelines
from twinplatform.db.base import utcnow
from twinplatform.db.models import Outbox, StageRun
from twinplatform.jobs.lease import claim
from twinplatform.jobs.outbox import relay
from twinplatform.jobs.reaper import reap
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import submit_job
from twinplatform.services.ingest import ingest_files
from twinplatform.services.jobs import get_job
from twinplatform.services.twins import create_twin

kit_pipelines.register()


def _broker_job(runtime: Runtime, tmp_path: Path) -> tuple[str, int]:
    create_twin(runtime.sessions, "carol")
    ingest_files(runtime, "carol", [make_audio(tmp_path / "v.wav", seconds=0.2)])
    job_id = submit_job(runtime, load_pipeline("kit", "preprocess"), "carol", executor="celery").job_id
    with runtime.sessions() as session:
        first = session.scalars(select(StageRun.id).where(StageRun.job_id == job_id, StageRun.position == 0)).one()
    return job_id, first


def _dispatches(runtime: Runtime, stage_run_id: int) -> list[Outbox]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Outbox).where(Outbox.stage_run_id == stage_run_id).order_by(Outbox.id)))


def test_submission_writes_one_dispatch_and_relay_sends_it_once(runtime: Runtime, tmp_path: Path) -> None:
    _, first = _broker_job(runtime, tmp_path)
    sent: list[int] = []
    assert relay(runtime.sessions, lambda d: sent.append(d.stage_run_id)) == 1
    assert relay(runtime.sessions, lambda d: sent.append(d.stage_run_id)) == 0
    assert sent == [first] and _dispatches(runtime, first)[0].queue == "cpu"


def test_a_failed_send_stays_pending(runtime: Runtime, tmp_path: Path) -> None:
    _, first = _broker_job(runtime, tmp_path)

    def broker_down(_: object) -> None:
        raise ConnectionError("broker unreachable")

    assert relay(runtime.sessions, broker_down) == 0
    (row,) = _dispatches(runtime, first)
    assert row.sent_at is None and "broker unreachable" in (row.last_error or "")


def test_expired_lease_is_requeued_with_a_new_dispatch(runtime: Runtime, tmp_path: Path) -> None:
    job_id, first = _broker_job(runtime, tmp_path)
    relay(runtime.sessions, lambda d: None)
    assert claim(runtime.sessions, first, "elsewhere:1", lease_s=0.01) is not None
    time.sleep(0.05)
    report = reap(runtime)
    assert report.requeued == [first]
    view = get_job(runtime.sessions, job_id, with_events=True)
    assert view.stages[0].state == "queued"
    assert any("lost (lease expired)" in e["message"] for e in view.events)
    assert [row.reason for row in _dispatches(runtime, first)] == ["submitted", "lost"]


def test_a_stage_whose_worker_dies_too_often_is_failed(runtime: Runtime, tmp_path: Path) -> None:
    job_id, first = _broker_job(runtime, tmp_path)
    for _ in range(runtime.policy.max_worker_losses):
        assert claim(runtime.sessions, first, "elsewhere:1", lease_s=0.01) is not None
        time.sleep(0.05)
        reap(runtime)
    view = get_job(runtime.sessions, job_id)
    assert view.state == "failed" and view.error_kind == "worker_lost"


def test_redispatch_of_a_queued_stage_backs_off(runtime: Runtime, tmp_path: Path) -> None:
    runtime.policy = replace(runtime.policy, redispatch_after_s=60)
    _, first = _broker_job(runtime, tmp_path)
    relay(runtime.sessions, lambda d: None)
    assert reap(runtime).redispatched == []  # just sent: nothing is stale yet

    def age_dispatches(seconds: float) -> None:
        with runtime.sessions() as session, session.begin():
            for row in session.scalars(select(Outbox).where(Outbox.stage_run_id == first)):
                row.sent_at = utcnow() - timedelta(seconds=seconds)

    age_dispatches(61)
    assert reap(runtime).redispatched == [first]
    relay(runtime.sessions, lambda d: None)
    age_dispatches(61)  # second dispatch: now it must wait 120 s
    assert reap(runtime).redispatched == []
    age_dispatches(121)
    assert reap(runtime).redispatched == [first]
