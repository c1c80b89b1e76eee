"""Creating jobs: one Job row plus one StageRun row per pipeline stage, deduplicated while active."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipelines.base import Pipeline
from twinplatform.db.models import Job, StageRun, Twin
from twinplatform.domain import ACTIVE_JOB_STATES, JobState, StageState
from twinplatform.errors import TwinNotFound
from twinplatform.jobs import events, outbox
from twinplatform.jobs.runtime import Runtime


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool  # False when an identical active job already existed and is returned instead


def idempotency_key(owner: str, model: str, task: str, params: dict[str, Any]) -> str:
    """`owner` is the twin id, or "dataset:{name}" for a dataset job."""
    canonical = json.dumps([owner, model, task, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_job(
    runtime: Runtime,
    pipeline: Pipeline,
    twin_id: str | None,
    *,
    dataset: str | None = None,
    params: dict[str, Any] | None = None,
    priority: int = 0,
    requested_gpus: int = 0,
    executor: str = "inline",
) -> Submitted:
    """Record a job and its stages (state QUEUED); return the existing job for a duplicate active request.

    A job serves one twin (`twin_id`) or builds one dataset (`dataset`, with the member twins in
    `params["twins"]`), never both. With `executor="celery"` the first stage's dispatch is written to the outbox
    in the same transaction.
    """
    if (twin_id is None) == (dataset is None):
        raise ValueError("a job serves either one twin or one dataset")
    params = dict(params or {})
    key = idempotency_key(twin_id or f"dataset:{dataset}", pipeline.model, pipeline.task, params)
    with runtime.sessions() as session:
        if twin_id is not None and session.get(Twin, twin_id) is None:
            raise TwinNotFound(twin_id)
        existing = _active_job(session, key)
        if existing is not None:
            return Submitted(existing.id, created=False)
        job = Job(
            twin_id=twin_id,
            dataset=dataset,
            model=pipeline.model,
            task=pipeline.task,
            params=params,
            state=JobState.QUEUED.value,
            priority=priority,
            requested_gpus=requested_gpus,
            executor=executor,
            idempotency_key=key,
        )
        session.add(job)
        for position, stage in enumerate(pipeline.stages):
            job.stage_runs.append(
                StageRun(
                    stage=stage.name,
                    position=position,
                    state=StageState.QUEUED.value,
                    max_attempts=runtime.policy.max_attempts,
                    resources_gpus=max(stage.resources.gpus, requested_gpus if stage.resources.gpus else 0),
                )
            )
        session.flush()
        events.record(
            session,
            "job.state",
            job=job,
            to_state=JobState.QUEUED.value,
            message=f"{pipeline.model}/{pipeline.task} submitted with {len(pipeline.stages)} stages",
            data={"params": params, "priority": priority, "requested_gpus": requested_gpus, "executor": executor},
        )
        outbox.enqueue(session, job, job.stage_runs[0], reason="submitted")
        try:
            session.commit()
        except IntegrityError:
            # NOTE: a concurrent identical submission won the unique partial index; return its job.
            session.rollback()
            existing = _active_job(session, key)
            if existing is None:
                raise
            return Submitted(existing.id, created=False)
        return Submitted(job.id, created=True)


def _active_job(session: Session, key: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.idempotency_key == key, Job.state.in_([s.value for s in ACTIVE_JOB_STATES]))
    ).first()
