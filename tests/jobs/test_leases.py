"""Leases and fencing: a dead worker's stage is taken over, and a stale attempt can never commit."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from pipelines.media.synthetic import make_audio
from pipelines.registry import load_pipeline
from tests.support import kit_pipelines
from twinplatform.db.base import utcnow
from twinplatform.db.models import StageRun
from twinplatform.jobs.inline import run_job_inline
from twinplatform.jobs.lease import Heartbeat, claim, guarded_update
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import submit_job
from twinplatform.services.ingest import ingest_files
from twinplatform.services.jobs import get_job
from twinplatform.services.twins import create_twin

kit_pipelines.register()


def _job(runtime: Runtime, tmp_path: Path, **params: object) -> tuple[str, int]:
    create_twin(runtime.sessions, "bob")
    ingest_files(runtime, "bob", [make_audio(tmp_path / "v.wav", seconds=0.3)])
    job_id = submit_job(runtime, load_pipeline("kit", "preprocess"), "bob", params=dict(params)).job_id
    first = get_job(runtime.sessions, job_id).stages[0]
    with runtime.sessions() as session:
        stage_run_id = session.query(StageRun.id).filter_by(job_id=job_id, stage=first.stage).scalar()
    return job_id, int(stage_run_id)


def test_a_claim_is_exclusive_while_the_lease_lives(runtime: Runtime, tmp_path: Path) -> None:
    _, stage_run_id = _job(runtime, tmp_path)
    held = claim(runtime.sessions, stage_run_id, "worker-a", lease_s=30)
    assert held is not None and held.attempt == 1
    assert claim(runtime.sessions, stage_run_id, "worker-b", lease_s=30) is None


def test_expired_lease_is_taken_over_and_the_stale_attempt_cannot_commit(runtime: Runtime, tmp_path: Path) -> None:
    job_id, stage_run_id = _job(runtime, tmp_path)
    # A worker claims the stage and dies before its first heartbeat (the lease is short and never renewed).
    stale = claim(runtime.sessions, stage_run_id, "dead-worker", lease_s=0.2)
    assert stale is not None
    time.sleep(0.3)
    started = time.monotonic()
    state = run_job_inline(runtime, job_id)
    assert state.value == "succeeded"
    assert time.monotonic() - started < 5
    view = get_job(runtime.sessions, job_id, with_events=True)
    assert view.stages[0].attempt == 2 and view.stages[0].worker == "test-worker"
    assert any("took over from dead-worker" in e["message"] for e in view.events)
    # The dead worker wakes up and tries to commit with its old attempt number: refused.
    with runtime.sessions() as session, session.begin():
        assert not guarded_update(session, stale, state="succeeded")


def test_heartbeat_renews_the_lease_and_notices_loss(runtime: Runtime, tmp_path: Path) -> None:
    _, stage_run_id = _job(runtime, tmp_path)
    held = claim(runtime.sessions, stage_run_id, "worker-a", lease_s=1.0)
    assert held is not None
    heartbeat = Heartbeat(runtime.sessions, held, lease_s=1.0, interval_s=0.1)
    heartbeat.start()
    try:
        time.sleep(1.5)  # longer than the lease: only the heartbeat keeps it alive
        assert claim(runtime.sessions, stage_run_id, "worker-b", lease_s=1.0) is None
        with runtime.sessions() as session:
            row = session.get_one(StageRun, stage_run_id)
            assert row.heartbeat_at is not None and row.lease_expires_at is not None
            assert row.lease_expires_at > utcnow() + timedelta(seconds=0.5)
        # Another party takes the stage over (as the reaper would after a partition): the heartbeat notices.
        with runtime.sessions() as session, session.begin():
            session.get_one(StageRun, stage_run_id).attempt = held.attempt + 1
        deadline = time.monotonic() + 2
        while not heartbeat.lease_lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heartbeat.lease_lost.is_set()
    finally:
        heartbeat.stop()


def test_cancel_reaches_a_running_stage_which_commits_nothing(runtime: Runtime, tmp_path: Path) -> None:
    import threading

    from twinplatform.services.jobs import cancel_job

    job_id, _ = _job(runtime, tmp_path, slow_stage="first", slow_s=5)
    timer = threading.Timer(0.8, lambda: cancel_job(runtime.sessions, job_id))
    timer.start()
    started = time.monotonic()
    state = run_job_inline(runtime, job_id)
    timer.join()
    assert state.value == "cancelled"
    assert time.monotonic() - started < 4
    view = get_job(runtime.sessions, job_id)
    assert [s.state for s in view.stages] == ["cancelled", "cancelled"]
    assert runtime.backend.head("processed/bob/preprocessed/kit/first/copy.bin") is None
