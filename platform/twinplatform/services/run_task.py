"""Requesting a task for a twin: checks, job submission, and (in-process mode) driving it to the end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pipelines.base import Source
from pipelines.registry import NEURAL_ENGINE_FILES, load_pipeline
from storage_layout import Location
from twinplatform.db.models import Asset
from twinplatform.errors import InputError
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import Submitted, submit_job
from twinplatform.services.gpus import visible_gpus
from twinplatform.services.twins import require_twin


@dataclass(frozen=True)
class RunRequest:
    """`files` are the request's inputs by name (e.g. {"audio": "speech.wav"}): a local file, uploaded under
    inference/{twin}/{model}/{run}/request/, or the key of an object already in the store."""

    twin_id: str
    task: str
    model: str = "th"
    params: dict[str, Any] | None = None
    priority: int = 0
    n_gpus: int = 0
    files: dict[str, str] = field(default_factory=dict)


def resolve_engine(runtime: Runtime, request: RunRequest) -> tuple[RunRequest, str]:
    """Turn engine "auto" into neural or classical by what is in the store; return the request and a sentence
    saying which engine runs and why (empty for other tasks)."""
    params = dict(request.params or {})
    if request.task != "inference" or "engine" not in params:
        return request, ""
    engine = str(params["engine"])
    needed = NEURAL_ENGINE_FILES.get(request.model, ())
    missing = [
        name
        for name in needed
        if runtime.backend.head(runtime.layout.key(Location.common(request.model, name))) is None
    ]
    if engine == "auto":
        engine = "classical" if missing or not needed else "neural"
        if not needed:
            why = f"model {request.model} has no neural checkpoints"
        elif missing:
            why = f"the neural checkpoints are absent: {', '.join(f'common/{request.model}/{m}' for m in missing)}"
        else:
            why = "its checkpoints are in the store"
        note = f"engine: {engine} ({why})"
    else:
        note = f"engine: {engine}"
    params["engine"] = engine
    return replace(request, params=params), note


def attach_request_files(runtime: Runtime, request: RunRequest) -> RunRequest:
    """Give an inference run its own run id and put its request files in the store; return the request with
    `params["run"]` and `params["inputs"]` set. Other tasks take no files."""
    if not request.files:
        return request
    if request.task != "inference":
        raise InputError(f"--{next(iter(request.files))} is an input of the inference task, not of {request.task}")
    params = dict(request.params or {})
    run_id = str(params.get("run") or uuid.uuid4().hex[:12])
    inputs: dict[str, str] = dict(params.get("inputs") or {})
    for name, value in request.files.items():
        path = Path(value).expanduser()
        if path.is_file():
            key = runtime.layout.key(Location.inference(request.twin_id, request.model, run_id, f"request/{path.name}"))
            runtime.backend.put_file(path, key, overwrite=True)
        elif runtime.backend.head(value) is not None:
            key = value
        else:
            raise InputError(
                f"--{name} {value!r} is neither a file on this machine nor a key in the store {runtime.backend.url}: "
                "give the path of a file or the key of an object"
            )
        inputs[name] = key
    params.update(run=run_id, inputs=inputs)
    return replace(request, params=params)


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
    request = attach_request_files(runtime, request)
    missing = [
        spec.name
        for stage in pipeline.stages
        for spec in stage.inputs
        if spec.source is Source.REQUEST
        and not spec.optional
        and spec.name not in (request.params or {}).get("inputs", {})
    ]
    if missing:
        raise InputError(
            f"{request.model}/{request.task} needs {', '.join(f'--{name} FILE' for name in sorted(set(missing)))}"
        )
    with runtime.sessions() as session:
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
