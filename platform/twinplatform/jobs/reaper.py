"""The reaper: finds stages whose worker died and dispatches them again; re-sends lost dispatches.

It runs in every worker's main process (and as `platform reaper`); several reapers at once are safe because
every change is a compare-and-set on the row it read. Broker redelivery is only a backup; this is the path
that bounds recovery: lease expiry + reaper interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from twinplatform.db.base import utcnow
from twinplatform.db.models import Job, Outbox, StageRun
from twinplatform.domain import ACTIVE_JOB_STATES, StageState
from twinplatform.jobs import events, outbox
from twinplatform.jobs.lease import fail_lost_stage, holder_is_dead
from twinplatform.jobs.runtime import Runtime


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)  # stage runs whose worker was lost, dispatched again
    failed: list[int] = field(default_factory=list)  # stage runs whose worker died too often
    redispatched: list[int] = field(default_factory=list)  # queued stage runs whose message may have been lost

    @property
    def changed(self) -> bool:
        return bool(self.requeued or self.failed or self.redispatched)


def reap(runtime: Runtime) -> ReapReport:
    report = ReapReport()
    now = utcnow()
    with runtime.sessions() as session, session.begin():
        expired = session.scalars(
            select(StageRun)
            .join(Job)
            .where(
                StageRun.state == StageState.RUNNING.value,
                Job.state.in_([s.value for s in ACTIVE_JOB_STATES]),
                # A run that never renewed its lease expires too: the claim always sets an expiry.
                (StageRun.lease_expires_at.is_(None)) | (StageRun.lease_expires_at <= now),
            )
        ).all()
        dead_here = session.scalars(
            select(StageRun).where(StageRun.state == StageState.RUNNING.value, StageRun.lease_expires_at > now)
        ).all()
        if not runtime.policy.detect_dead_local_holders:
            dead_here = []
        for stage_run in [*expired, *(run for run in dead_here if holder_is_dead(run.worker))]:
            _requeue_lost(session, runtime, stage_run, now, report)
    with runtime.sessions() as session, session.begin():
        _redispatch_stale(session, runtime, now, report)
    return report


def _requeue_lost(session: Session, runtime: Runtime, stage_run: StageRun, now: datetime, report: ReapReport) -> None:
    if stage_run.lost_count + 1 >= runtime.policy.max_worker_losses:
        fail_lost_stage(session, stage_run, now, runtime.policy.max_worker_losses)
        report.failed.append(stage_run.id)
        return
    result = session.execute(
        update(StageRun)
        .where(StageRun.id == stage_run.id, StageRun.attempt == stage_run.attempt, StageRun.state == stage_run.state)
        .values(state=StageState.QUEUED.value, lost_count=stage_run.lost_count + 1, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return  # its worker renewed or another reaper got there first
    session.refresh(stage_run)
    events.record(
        session,
        "stage.state",
        job=stage_run.job,
        stage_run=stage_run,
        from_state="running",
        to_state="queued",
        message=f"worker {stage_run.worker} lost (lease expired); dispatched again "
        f"({stage_run.lost_count}/{runtime.policy.max_worker_losses} losses)",
    )
    outbox.enqueue(session, stage_run.job, stage_run, reason="lost")
    report.requeued.append(stage_run.id)


def _redispatch_stale(session: Session, runtime: Runtime, now: datetime, report: ReapReport) -> None:
    """Queued stages of broker jobs whose last dispatch went out long ago and nothing picked it up (a broker
    that lost its queue, e.g. Redis restarted without persistence): send them again.

    NOTE: a long backlog looks the same as a lost message from here, so the wait doubles with every dispatch
    of the same stage (interval x 2^(dispatches-1)): a stage waiting hours behind others gets a handful of
    duplicate messages (each dismissed by the claim in milliseconds), never one per interval.
    """
    base_s = runtime.policy.redispatch_after_s
    dispatches = (
        select(
            Outbox.stage_run_id,
            func.max(Outbox.sent_at).label("last_sent"),
            func.count(Outbox.id).label("sent_count"),
        )
        .where(Outbox.sent_at.is_not(None))
        .group_by(Outbox.stage_run_id)
        .subquery()
    )
    pending = select(Outbox.stage_run_id).where(Outbox.sent_at.is_(None))
    candidates = session.execute(
        select(StageRun, dispatches.c.last_sent, dispatches.c.sent_count)
        .join(Job)
        .join(dispatches, dispatches.c.stage_run_id == StageRun.id)
        .where(
            Job.executor == "celery",
            Job.state.in_([s.value for s in ACTIVE_JOB_STATES]),
            StageRun.state == StageState.QUEUED.value,
            dispatches.c.last_sent <= now - timedelta(seconds=base_s),
            StageRun.id.not_in(pending),
        )
    ).all()
    for stage_run, last_sent, sent_count in candidates:
        wait_s = base_s * 2 ** max(0, sent_count - 1)
        if last_sent > now - timedelta(seconds=wait_s):
            continue
        outbox.enqueue(session, stage_run.job, stage_run, reason="redispatch")
        events.record(
            session,
            "stage.redispatch",
            job=stage_run.job,
            stage_run=stage_run,
            message=f"queued for {(now - last_sent).total_seconds():.0f} s since dispatch {sent_count}; sent again",
        )
        report.redispatched.append(stage_run.id)
