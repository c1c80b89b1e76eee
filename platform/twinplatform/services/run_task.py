"""Requesting a task for a twin: checks, job submission, and (in-process mode) driving it to the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from pipelines.registry import load_pipeline
from twinplatform.db.models import Asset
from twinplatform.errors import InputError
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import Submitted, submit_job
from twinplatform.services.gpus import visible_gpus
from twinplatform.services.twins import require_twin


@dataclass(frozen=True)
class RunRequest:
    twin_id: str
    task: str
    model: str = "th"
    params: dict[str, Any] | None = None
    priority: int = 0
    n_gpus: int = 0


def submit_run(runtime: Runtime, request: RunRequest, *, in_process: bool) -> Submitted:
    """Validate the request and record the job (or return the identical active one)."""
    try:
        pipeline = load_pipeline(request.model, request.task)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from exc
    if request.n_gpus < 0:
        raise InputError(f"--n-gpus {request.n_gpus} is negative: give 0 or more")
    if in_process and request.n_gpus > 0:
        available = len(visible_gpus())
        if request.n_gpus > available:
            raise InputError(
                f"--n-gpus {request.n_gpus} asked, but this machine has {available} GPU(s) and runs jobs in-process: "
                "run on a GPU machine, or set PLATFORM_BROKER_URL to send the job to GPU workers"
            )
    with runtime.sessions() as session:
        require_twin(session, request.twin_id)
        raw_files = session.scalar(
            select(func.count()).select_from(Asset).where(Asset.twin_id == request.twin_id, Asset.area == "raw")
        )
    if request.task == "preprocess" and not raw_files:
        raise InputError(
            f"twin {request.twin_id!r} has no uploaded media: add a video, image or audio with "
            f"`platform twin ingest {request.twin_id} FILE...`"
        )
    return submit_job(
        runtime,
        pipeline,
        request.twin_id,
        params=request.params,
        priority=request.priority,
        requested_gpus=request.n_gpus,
        executor="inline" if in_process else "celery",
    )
