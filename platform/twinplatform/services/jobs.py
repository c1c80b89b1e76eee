"""Job queries and controls for `platform status` and `platform jobs`: views, retry, cancel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from twinplatform.db.models import Event, Job, Outbox, StageRun
from twinplatform.domain import JobState
from twinplatform.errors import InputError, JobNotFound
from twinplatform.jobs import progression


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


@dataclass(frozen=True)
class StageView:
    stage: str
    state: str
    attempt: int
    max_attempts: int
    progress: float
    message: str
    worker: str | None
    heartbeat_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    error_kind: str | None
    error: str | None
    outputs: list[str]
    metrics: dict[str, Any]

    @classmethod
    def of(cls, run: StageRun) -> StageView:
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        manifest = run.output_manifest or {}
        return cls(
            stage=run.stage,
            state=run.state,
            attempt=run.attempt,
            max_attempts=run.max_attempts,
            progress=round(run.progress, 4),
            message=run.progress_message,
            worker=run.worker,
            heartbeat_at=_iso(run.heartbeat_at),
            started_at=_iso(run.started_at),
            finished_at=_iso(run.finished_at),
            duration_s=round(duration, 3) if duration is not None else None,
            error_kind=run.error_kind,
            error=run.error_message,
            outputs=[entry["key"] for entry in manifest.get("outputs", {}).values()],
            metrics=run.metrics or {},
        )


@dataclass(frozen=True)
class JobView:
    job_id: str
    twin_id: str | None  # None for a dataset job
    dataset: str | None  # the dataset a dataset job builds
    model: str
    task: str
    state: str
    priority: int
    requested_gpus: int
    params: dict[str, Any]
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error_kind: str | None
    error: str | None
    stages: list[StageView]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def subject(self) -> str:
        """What the job serves, for tables: the twin id, or "dataset NAME"."""
        return self.twin_id if self.twin_id is not None else f"dataset {self.dataset}"

    @property
    def progress(self) -> float:
        if not self.stages:
            return 0.0
        return sum(1.0 if s.state in ("succeeded", "skipped") else s.progress for s in self.stages) / len(self.stages)

    @classmethod
    def of(cls, job: Job, events: list[Event] | None = None) -> JobView:
        return cls(
            job_id=job.id,
            twin_id=job.twin_id,
            dataset=job.dataset,
            model=job.model,
            task=job.task,
            state=job.state,
            priority=job.priority,
            requested_gpus=job.requested_gpus,
            params=dict(job.params or {}),
            created_at=_iso(job.created_at),
            started_at=_iso(job.started_at),
            finished_at=_iso(job.finished_at),
            error_kind=job.error_kind,
            error=job.error_message,
            stages=[StageView.of(run) for run in job.stage_runs],
            events=[
                {
                    "at": _iso(e.created_at),
                    "type": e.type,
                    "stage_run_id": e.stage_run_id,
                    "attempt": e.attempt,
                    "from": e.from_state,
                    "to": e.to_state,
                    "worker": e.worker,
                    "message": e.message,
                    "data": e.data,
                }
                for e in (events or [])
            ],
        )

    def as_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["progress"] = round(self.progress, 4)
        return data


def list_jobs(
    sessions: sessionmaker[Session],
    *,
    twin_id: str | None = None,
    dataset: str | None = None,
    state: str | None = None,
    limit: int = 20,
) -> list[JobView]:
    with sessions() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if twin_id is not None:
            query = query.where(Job.twin_id == twin_id)
        if dataset is not None:
            query = query.where(Job.dataset == dataset)
        if state is not None:
            query = query.where(Job.state == state)
        return [JobView.of(job) for job in session.scalars(query)]


def get_job(sessions: sessionmaker[Session], job_id: str, *, with_events: bool = False) -> JobView:
    with sessions() as session:
        job = _find(session, job_id)
        events = (
            list(session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id)))
            if with_events
            else None
        )
        return JobView.of(job, events)


def retry_job(sessions: sessionmaker[Session], job_id: str) -> list[str]:
    """Queue a failed or cancelled job again from its failed stage; succeeded stages are kept."""
    with sessions() as session, session.begin():
        job = _find(session, job_id)
        if job.state not in (JobState.FAILED.value, JobState.CANCELLED.value):
            raise InputError(f"job {job.id} is {job.state}: only failed or cancelled jobs can be retried")
        return progression.reset_for_retry(session, job)


def cancel_job(sessions: sessionmaker[Session], job_id: str, reason: str = "cancelled by the user") -> list[str]:
    """Cancel the job; return the broker task ids of its dispatches (for a best-effort revoke)."""
    with sessions() as session, session.begin():
        job = _find(session, job_id)
        if JobState(job.state).is_final:
            raise InputError(f"job {job.id} already ended ({job.state}): nothing to cancel")
        progression.cancel_job(session, job, reason)
        return [
            task_id for task_id in session.scalars(select(Outbox.task_id).where(Outbox.job_id == job.id)) if task_id
        ]


def _find(session: Session, job_id: str) -> Job:
    """Look a job up by its id or a unique prefix of it (as printed in tables)."""
    job = session.get(Job, job_id)
    if job is not None:
        return job
    if len(job_id) >= 4:
        matches = session.scalars(select(Job).where(Job.id.startswith(job_id, autoescape=True)).limit(2)).all()
        if len(matches) == 1:
            return matches[0]
    raise JobNotFound(job_id)
