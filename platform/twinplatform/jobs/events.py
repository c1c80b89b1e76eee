"""Appending to the event log: one row per transition, written in the same transaction as the change.

Rows are inserted with a plain INSERT, not as ORM objects: nothing reads them back in the same transaction,
and skipping the unit of work matters on the per-stage hot path (4 events per stage).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from twinplatform.db.base import utcnow
from twinplatform.db.models import Event, Job, StageRun


def record(
    session: Session,
    type_: str,
    *,
    job: Job | None = None,
    stage_run: StageRun | None = None,
    twin_id: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    message: str = "",
    worker: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    record_ids(
        session,
        type_,
        twin_id=twin_id or (job.twin_id if job is not None else None),
        job_id=job.id if job is not None else (stage_run.job_id if stage_run is not None else None),
        stage_run_id=stage_run.id if stage_run is not None else None,
        attempt=stage_run.attempt if stage_run is not None else None,
        from_state=from_state,
        to_state=to_state,
        message=message,
        worker=worker,
        data=data,
    )


def record_ids(
    session: Session,
    type_: str,
    *,
    twin_id: str | None,
    job_id: str | None,
    stage_run_id: int | None = None,
    attempt: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    message: str = "",
    worker: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """The same row from plain ids, for code paths that hold no ORM objects."""
    session.execute(
        insert(Event).values(
            created_at=utcnow(),
            type=type_,
            twin_id=twin_id,
            job_id=job_id,
            stage_run_id=stage_run_id,
            attempt=attempt,
            from_state=from_state,
            to_state=to_state,
            worker=worker,
            message=message,
            data=data,
        )
    )
