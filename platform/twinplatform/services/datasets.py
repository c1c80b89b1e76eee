"""Building a model's training dataset from many twins: per-twin preprocess jobs, then one dataset job.

A build is two steps, each a job of the engine with its usual guarantees:
1. every member twin's `{model}/preprocess` job (up-to-date stages are skipped, so a twin already preprocessed
   costs nothing; an identical active job is followed instead of duplicated);
2. one `{model}/dataset` job over the twins whose preprocess succeeded, with the others listed in
   `params["excluded"]` and the reason each failed. It writes `datasets/{model}/{name}/...` and `manifest.json`.

The caller (the CLI) waits for step 1 before submitting step 2. If it is interrupted in between, running the
same build again resumes: finished preprocess jobs are skipped as up to date.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pipelines.registry import PIPELINES, load_pipeline
from storage_layout import Area, LayoutError, Location
from twinplatform.db.models import Job
from twinplatform.domain import ACTIVE_JOB_STATES, JobState
from twinplatform.errors import InputError
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import Submitted, idempotency_key, submit_job
from twinplatform.services.jobs import JobView, get_job
from twinplatform.services.run_task import RunRequest, submit_run
from twinplatform.services.twins import checked_twin_id, require_twin

MANIFEST = "manifest.json"


def dataset_models() -> list[str]:
    """Models that have both a per-twin preprocess and a dataset task."""
    return sorted(model for model, task in PIPELINES if task == "dataset" and (model, "preprocess") in PIPELINES)


@dataclass(frozen=True)
class DatasetRequest:
    """`params` go to the dataset job (augment_factor, train_percent...), `preprocess_params` to every member's
    preprocess job (sampling_rate, duration_s...). With `extend`, the twins of the last build are kept."""

    model: str
    name: str
    twins: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    preprocess_params: dict[str, Any] = field(default_factory=dict)
    extend: bool = False
    priority: int = 0


def check_request(runtime: Runtime, request: DatasetRequest) -> DatasetRequest:
    """Validate the model, the dataset name and every twin; with `extend`, add the last build's twins first.

    Raises InputError naming the bad value and what to do.
    """
    if request.model not in dataset_models():
        raise InputError(
            f"model {request.model!r} has no dataset task; dataset models: {', '.join(dataset_models())}"
        )
    try:
        Location.dataset(request.model, request.name, MANIFEST)
    except LayoutError as exc:
        raise InputError(f"dataset name {request.name!r} is invalid: {exc}") from exc
    reserved = sorted({"twins", "excluded", "dataset"} & set(request.params))
    if reserved:
        raise InputError(f"--param {reserved[0]} is set by the platform; name the twins with --twins")
    twins = [checked_twin_id(twin.strip()) for twin in request.twins if twin.strip()]
    if request.extend:
        earlier = last_build(runtime, request.model, request.name)
        if earlier is None:
            raise InputError(
                f"dataset {request.model}/{request.name} has never been built, so there is nothing to extend: "
                "drop --add to build it"
            )
        previous = [*earlier.params.get("twins", []), *earlier.params.get("excluded", {})]
        twins = [*previous, *(twin for twin in twins if twin not in previous)]
    if not twins:
        raise InputError("no twins given: name the member twins with --twins a,b,c")
    duplicates = sorted({twin for twin in twins if twins.count(twin) > 1})
    if duplicates:
        raise InputError(f"twin {duplicates[0]!r} is listed twice in --twins; list each twin once")
    with runtime.sessions() as session:
        for twin in twins:
            require_twin(session, twin)
    load_pipeline(request.model, "preprocess")
    load_pipeline(request.model, "dataset")
    return replace(request, twins=tuple(twins))


def submit_member_preprocess(
    runtime: Runtime, request: DatasetRequest, *, in_process: bool
) -> tuple[dict[str, Submitted], dict[str, str]]:
    """Submit each member's preprocess job; a twin that cannot even be submitted (no uploads) is excluded at
    once. Returns ({twin: submitted job}, {twin: reason excluded})."""
    submitted: dict[str, Submitted] = {}
    refused: dict[str, str] = {}
    for twin in request.twins:
        run = RunRequest(
            twin_id=twin,
            task="preprocess",
            model=request.model,
            params=dict(request.preprocess_params),
            priority=request.priority,
        )
        try:
            submitted[twin] = submit_run(runtime, run, in_process=in_process)
        except InputError as exc:
            refused[twin] = f"preprocess not started: {exc}"
    return submitted, refused


def member_outcomes(runtime: Runtime, jobs: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Split finished member jobs ({twin: job id}) into usable twins and {twin: why excluded}.

    The reason names the failed stage and its error, never the job id, so building the same dataset again from the
    same outcomes is recognised as up to date.
    """
    usable: list[str] = []
    excluded: dict[str, str] = {}
    for twin, job_id in jobs.items():
        view = get_job(runtime.sessions, job_id)
        if view.state == JobState.SUCCEEDED.value:
            usable.append(twin)
            continue
        failed = next((stage for stage in view.stages if stage.state in ("failed", "cancelled")), None)
        where = f"preprocess stage {failed.stage}" if failed else "preprocess"
        excluded[twin] = f"{where} {view.state}: {(failed.error if failed else view.error) or 'no reason recorded'}"
    return usable, excluded


def submit_dataset_job(
    runtime: Runtime,
    request: DatasetRequest,
    usable: list[str],
    excluded: dict[str, str],
    *,
    in_process: bool,
) -> Submitted:
    """Record the dataset job over the usable twins. With none usable it still runs, and fails with every
    twin's reason: the failure is on record like any other."""
    pipeline = load_pipeline(request.model, "dataset")
    # NOTE: the preprocess parameters ride along (the dataset's own win) so a dataset stage can check that every
    # member was preprocessed with them (e.g. perceptalign's chunk length) without the user repeating them.
    params = {
        **request.preprocess_params,
        **request.params,
        "dataset": request.name,
        "twins": list(usable),
        "excluded": dict(excluded),
    }
    with runtime.sessions() as session:
        active = session.scalars(
            select(Job).where(
                Job.model == request.model,
                Job.dataset == request.name,
                Job.state.in_([state.value for state in ACTIVE_JOB_STATES]),
            )
        ).first()
    if active is not None and active.idempotency_key != idempotency_key(
        f"dataset:{request.name}", request.model, "dataset", params
    ):
        # Two different builds of one dataset would write (and prune) the same folder at once.
        raise InputError(
            f"dataset {request.model}/{request.name} is being built by job {active.id} with other twins or "
            f"parameters: wait for it (`platform status --dataset {request.name}`) or cancel it, then build again"
        )
    return submit_job(
        runtime,
        pipeline,
        None,
        dataset=request.name,
        params=params,
        priority=request.priority,
        executor="inline" if in_process else "celery",
    )


def last_build(runtime: Runtime, model: str, name: str) -> JobView | None:
    """The most recent dataset job of (model, name), whatever its state."""
    with runtime.sessions() as session:
        job_id = session.scalars(
            select(Job.id)
            .where(Job.model == model, Job.dataset == name, Job.task == "dataset")
            .order_by(Job.created_at.desc())
            .limit(1)
        ).first()
    return None if job_id is None else get_job(runtime.sessions, job_id)


@dataclass(frozen=True)
class DatasetSummary:
    """One dataset as a user asks about it: its last build and, when that succeeded, its manifest."""

    model: str
    name: str
    prefix: str
    job: JobView
    manifest: dict[str, Any] | None
    files: int

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "name": self.name,
            "prefix": self.prefix,
            "state": self.job.state,
            "job_id": self.job.job_id,
            "created_at": self.job.created_at,
            "finished_at": self.job.finished_at,
            "error": self.job.error,
            "files": self.files,
            "manifest": self.manifest,
        }


def describe_dataset(runtime: Runtime, model: str, name: str) -> DatasetSummary:
    """The last build of the dataset and its manifest; InputError when it was never built."""
    job = last_build(runtime, model, name)
    if job is None:
        raise InputError(
            f"no dataset {model}/{name}: build it with `platform dataset build --model {model} --name {name} "
            "--twins a,b`"
        )
    prefix = runtime.layout.prefix(Area.DATASETS, model=model, name=name)
    manifest_key = runtime.layout.key(Location.dataset(model, name, MANIFEST))
    manifest = None
    files = 0
    if job.state == JobState.SUCCEEDED.value:
        files = sum(len(stage.outputs) for stage in job.stages)
        if runtime.backend.head(manifest_key) is not None:
            with tempfile.TemporaryDirectory() as folder:
                local = Path(folder) / MANIFEST
                runtime.backend.get_file(manifest_key, local)
                manifest = json.loads(local.read_text())
    return DatasetSummary(model=model, name=name, prefix=prefix, job=job, manifest=manifest, files=files)


def list_datasets(runtime: Runtime) -> list[JobView]:
    """The last build of every dataset, newest first."""
    with runtime.sessions() as session:
        rows = session.execute(
            select(Job.id, Job.model, Job.dataset).where(Job.task == "dataset").order_by(Job.created_at.desc())
        ).all()
    seen: set[tuple[str, str | None]] = set()
    latest: list[JobView] = []
    for row in rows:
        if (row.model, row.dataset) in seen:
            continue
        seen.add((row.model, row.dataset))
        latest.append(get_job(runtime.sessions, row.id))
    return latest
