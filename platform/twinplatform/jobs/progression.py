"""Deriving a job's state from its stages after every stage transition (the only place jobs end)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from twinplatform.db.base import utcnow
from twinplatform.db.models import Job, StageRun
from twinplatform.domain import DONE_STAGE_STATES, ErrorKind, JobState, StageState
from twinplatform.jobs import events, outbox


def advance_job(session: Session, job: Job) -> list[StageRun]:
    """Settle the job's state and return the stage runs that may be dispatched now (in position order).

    Stages run one after another: the next runnable stage is the first one that is not done. A failed stage
    fails the job; the stages after it are cancelled so `platform jobs retry` can resume from it.
    """
    if JobState(job.state).is_final:
        return []
    stages = sorted(job.stage_runs, key=lambda run: run.position)
    failed = next((run for run in stages if run.state == StageState.FAILED.value), None)
    if failed is not None:
        for run in stages:
            if run.state in (StageState.QUEUED.value, StageState.RETRY_WAIT.value):
                _set_stage(
                    session,
                    job,
                    run,
                    StageState.CANCELLED,
                    ErrorKind.UPSTREAM,
                    f"not run: {failed.stage} failed",
                )
        _finish_job(session, job, JobState.FAILED, failed.error_kind, f"stage {failed.stage}: {failed.error_message}")
        return []
    if all(StageState(run.state) in DONE_STAGE_STATES for run in stages):
        _finish_job(session, job, JobState.SUCCEEDED, None, None)
        return []
    pending = next(run for run in stages if StageState(run.state) not in DONE_STAGE_STATES)
    if pending.state == StageState.QUEUED.value:
        outbox.enqueue(session, job, pending, reason="next")
    return [pending]


def advance_after_success(session: Session, *, job_id: str, twin_id: str | None) -> bool:
    """`advance_job` right after one of the job's stages succeeded, in plain statements (the per-stage hot path
    of every worker); True when a next stage was written to the outbox.

    NOTE: only the two common outcomes are handled here (the job is done, or the next stage is queued); anything
    else (a failed stage, a final job) goes through `advance_job` on ORM objects, so the rules live there.
    """
    rows = session.execute(
        select(
            StageRun.id,
            StageRun.state,
            StageRun.resources_gpus,
            Job.state.label("job_state"),
            Job.executor,
            Job.priority,
        )
        .join(Job, Job.id == StageRun.job_id)
        .where(StageRun.job_id == job_id)
        .order_by(StageRun.position)
    ).all()
    job_state = rows[0].job_state
    if JobState(job_state).is_final or any(row.state == StageState.FAILED.value for row in rows):
        advance_job(session, session.get_one(Job, job_id))
        return False
    pending = next((row for row in rows if StageState(row.state) not in DONE_STAGE_STATES), None)
    if pending is None:
        finished = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == job_state)
            .values(state=JobState.SUCCEEDED.value, error_kind=None, error_message=None, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if finished.rowcount == 1:  # type: ignore[attr-defined]
            events.record_ids(
                session,
                "job.state",
                twin_id=twin_id,
                job_id=job_id,
                from_state=job_state,
                to_state=JobState.SUCCEEDED.value,
            )
        return False
    if pending.state != StageState.QUEUED.value or rows[0].executor != "celery":
        return False
    outbox.enqueue_ids(
        session,
        job_id=job_id,
        stage_run_id=pending.id,
        gpus=pending.resources_gpus,
        priority=rows[0].priority,
        reason="next",
    )
    return True


def cancel_job(session: Session, job: Job, reason: str) -> None:
    """Cancel a queued or running job: stages not running are cancelled now; a running stage notices at its
    next heartbeat (cooperative) and ends CANCELLED without committing."""
    if JobState(job.state).is_final:
        return
    for run in job.stage_runs:
        if run.state in (StageState.QUEUED.value, StageState.RETRY_WAIT.value):
            _set_stage(session, job, run, StageState.CANCELLED, ErrorKind.CANCELLED, reason)
    _finish_job(session, job, JobState.CANCELLED, ErrorKind.CANCELLED.value, reason)


def reset_for_retry(session: Session, job: Job) -> list[str]:
    """Put a failed or cancelled job back in the queue from its first unfinished stage; return those stages."""
    reset: list[str] = []
    for run in sorted(job.stage_runs, key=lambda r: r.position):
        if run.state in (StageState.FAILED.value, StageState.CANCELLED.value):
            _set_stage(session, job, run, StageState.QUEUED, None, "queued again by `platform jobs retry`")
            run.attempt = 0
            run.lost_count = 0
            run.commit_attempt = None
            run.next_attempt_at = None
            run.finished_at = None
            reset.append(run.stage)
    previous = job.state
    job.state = JobState.QUEUED.value
    job.error_kind = None
    job.error_message = None
    job.finished_at = None
    events.record(session, "job.state", job=job, from_state=previous, to_state=job.state, message="retried")
    session.flush()
    advance_job(session, job)
    return reset


def _set_stage(
    session: Session, job: Job, run: StageRun, state: StageState, kind: ErrorKind | None, message: str
) -> None:
    previous = run.state
    run.state = state.value
    run.error_kind = kind.value if kind else None
    run.error_message = message if kind else None
    if state.is_final:
        run.finished_at = utcnow()
    events.record(
        session,
        "stage.state",
        job=job,
        stage_run=run,
        from_state=previous,
        to_state=state.value,
        message=message,
    )


def _finish_job(session: Session, job: Job, state: JobState, kind: str | None, message: str | None) -> None:
    previous = job.state
    job.state = state.value
    job.error_kind = kind
    job.error_message = message
    job.finished_at = utcnow()
    events.record(session, "job.state", job=job, from_state=previous, to_state=state.value, message=message or "")
