"""The transactional outbox: stage runs to hand to the broker, and the relay that sends them.

`enqueue` is called inside the transaction that makes a stage runnable (submit, next stage, retry, lost
worker), so the dispatch commits or rolls back with the state change. `relay` sends pending rows through a
`Sender` (the Celery one lives in twinplatform.worker) and stamps them; rows a crash left unsent are sent by the
next relay pass. Sending twice is harmless: a stage run is claimed by compare-and-set, so a duplicate message
finds nothing to claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from twinplatform.db.base import utcnow
from twinplatform.db.models import Job, Outbox, StageRun


def queue_for(stage_run: StageRun) -> str:
    """cpu for CPU stages; gpu-N for a stage that needs N GPUs (served by worker processes holding N GPUs)."""
    return queue_for_gpus(stage_run.resources_gpus)


def queue_for_gpus(gpus: int) -> str:
    return "cpu" if gpus <= 0 else f"gpu-{gpus}"


def enqueue_ids(session: Session, *, job_id: str, stage_run_id: int, gpus: int, priority: int, reason: str) -> None:
    """`enqueue` for a broker job from plain values (the stage-completion hot path holds no ORM objects)."""
    pending = session.execute(
        select(Outbox.id).where(Outbox.stage_run_id == stage_run_id, Outbox.sent_at.is_(None)).limit(1)
    ).first()
    if pending is None:
        session.execute(
            insert(Outbox).values(
                stage_run_id=stage_run_id,
                job_id=job_id,
                queue=queue_for_gpus(gpus),
                priority=priority,
                reason=reason,
                created_at=utcnow(),
                send_attempts=0,
            )
        )


def enqueue(
    session: Session, job: Job, stage_run: StageRun, *, reason: str, not_before: datetime | None = None
) -> Outbox | None:
    """Add a dispatch for `stage_run` unless the job runs in-process or an unsent one is already pending."""
    if job.executor != "celery":
        return None
    pending = session.scalars(
        select(Outbox).where(Outbox.stage_run_id == stage_run.id, Outbox.sent_at.is_(None)).limit(1)
    ).first()
    if pending is not None:
        if not_before is not None:
            pending.not_before = not_before
        return pending
    row = Outbox(
        stage_run_id=stage_run.id,
        job_id=job.id,
        queue=queue_for(stage_run),
        priority=job.priority,
        reason=reason,
        not_before=not_before,
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class Dispatch:
    outbox_id: int
    stage_run_id: int
    queue: str
    priority: int
    task_id: str


class Sender(Protocol):
    def __call__(self, dispatch: Dispatch) -> None:
        """Publish one dispatch to the broker; raise on failure (the row stays pending)."""


def relay(sessions: sessionmaker[Session], send: Sender, *, limit: int = 200) -> int:
    """Send due, unsent outbox rows (highest priority first); return how many were sent."""
    now = utcnow()
    sent = 0
    with sessions() as session, session.begin():
        query = (
            select(Outbox)
            .where(Outbox.sent_at.is_(None), (Outbox.not_before.is_(None)) | (Outbox.not_before <= now))
            .order_by(Outbox.priority.desc(), Outbox.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            # NOTE: concurrent relays (every worker runs one) take disjoint rows instead of waiting.
            query = query.with_for_update(skip_locked=True)
        for row in session.scalars(query):
            dispatch = Dispatch(row.id, row.stage_run_id, row.queue, row.priority, f"sr{row.stage_run_id}-o{row.id}")
            row.send_attempts += 1
            try:
                send(dispatch)
            except Exception as exc:  # noqa: BLE001  (a broker outage: the row stays pending and is retried)
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                break
            row.sent_at = utcnow()
            row.task_id = dispatch.task_id
            row.last_error = None
            sent += 1
    return sent
