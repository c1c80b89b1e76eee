"""Executing one stage run: claim its lease, resolve inputs, skip if up to date, run, upload, commit.

The commit is a compare-and-set on the attempt number, so at most one attempt's outputs are ever recorded.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.base import Pipeline, Stage, StageContext, StageResult
from pipelines.registry import load_pipeline
from storage_layout import Location
from twinplatform.db.base import utcnow
from twinplatform.db.models import Asset, Job, StageRun
from twinplatform.domain import ErrorKind, StageState
from twinplatform.errors import LeaseLost
from twinplatform.jobs import events
from twinplatform.jobs.failures import Failure, classify
from twinplatform.jobs.fingerprint import input_fingerprint
from twinplatform.jobs.inputs import resolve_inputs
from twinplatform.jobs.lease import Claim, Heartbeat, claim, guarded_update
from twinplatform.jobs.progression import advance_job
from twinplatform.jobs.runtime import Runtime

#: called with (stage name, fraction 0..1, message) for a live display
ProgressListener = Callable[[str, float, str], None]


@dataclass(frozen=True)
class StageOutcome:
    stage_run_id: int
    state: StageState | None  # None when the stage could not be claimed
    message: str


def execute_stage(runtime: Runtime, stage_run_id: int, *, on_progress: ProgressListener | None = None) -> StageOutcome:
    """Run one stage run to a recorded outcome. Never raises for stage failures: they are recorded."""
    held = claim(runtime.sessions, stage_run_id, runtime.worker_id, runtime.policy.lease_s)
    if held is None:
        return StageOutcome(stage_run_id, None, "not claimable")
    pipeline = load_pipeline(held.model, held.task)
    stage = pipeline.stage(held.stage)
    heartbeat = Heartbeat(runtime.sessions, held, lease_s=runtime.policy.lease_s, interval_s=runtime.policy.heartbeat_s)
    scratch = runtime.scratch_root / held.job_id / held.stage / f"attempt-{held.attempt}"
    try:
        with runtime.sessions() as session:
            job = session.get_one(Job, held.job_id)
            resolved = resolve_inputs(
                session,
                job,
                stage,
                output_area=pipeline.output_area,
                layout=runtime.layout,
                backend=runtime.backend,
            )
        reason = stage.applies(set(resolved))
        if reason is not None:
            return _finish(runtime, held, StageState.SKIPPED, reason)
        stage_params = _stage_params(held.params)
        fingerprint = input_fingerprint(
            stage.name, stage.version, stage_params, {name: item.checksum for name, item in resolved.items()}
        )
        prior = _committed_manifest(runtime, held, fingerprint)
        if prior is not None:
            return _finish(
                runtime,
                held,
                StageState.SKIPPED,
                f"up to date: outputs committed by job {prior['job_id']} match these inputs, parameters and "
                f"version {stage.version}",
                fingerprint=fingerprint,
                manifest=prior,
            )
        heartbeat.start()
        local_inputs = {name: runtime.mirror.fetch(item.key, item.checksum).path for name, item in resolved.items()}
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        reporter = _ProgressReporter(runtime, held, on_progress)
        context = StageContext(
            inputs=local_inputs,
            output_dir=scratch,
            params=stage_params,
            progress=reporter,
            is_cancelled=lambda: heartbeat.cancel_requested.is_set() or heartbeat.lease_lost.is_set(),
        )
        started = time.monotonic()
        result = stage.run(context)
        elapsed_s = time.monotonic() - started
        context.check_cancelled()
        manifest = _upload_outputs(runtime, held, pipeline, stage, result, scratch, heartbeat)
        manifest.update(
            job_id=held.job_id,
            attempt=held.attempt,
            stage=stage.name,
            version=stage.version,
            fingerprint=fingerprint,
            params=stage_params,
            inputs={name: {"key": item.key, "checksum": item.checksum} for name, item in resolved.items()},
        )
        metrics = dict(result.metrics, elapsed_s=round(elapsed_s, 3))
        return _commit(runtime, held, pipeline, manifest, metrics, result.message or "done")
    except LeaseLost as exc:
        return StageOutcome(stage_run_id, None, str(exc))
    except (KeyboardInterrupt, SystemExit) as exc:
        _hand_back(runtime, held, f"interrupted ({type(exc).__name__}): queued again")
        raise
    except Exception as exc:  # noqa: BLE001  (recorded as the stage's failure, never swallowed silently)
        failure = classify(exc, common_prefix=f"common/{held.model}/")
        return _fail(runtime, held, failure)
    finally:
        heartbeat.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _stage_params(job_params: dict[str, Any]) -> dict[str, Any]:
    """Parameters a stage sees: the job's params without the platform's own bookkeeping keys."""
    return {key: value for key, value in job_params.items() if key not in {"inputs", "run"}}


def _committed_manifest(runtime: Runtime, held: Claim, fingerprint: str) -> dict[str, Any] | None:
    """The newest committed manifest of this twin/model/stage with the same fingerprint whose outputs are all
    still in the store with their recorded checksums."""
    with runtime.sessions() as session:
        candidates = session.scalars(
            select(StageRun)
            .join(Job)
            .where(
                Job.twin_id == held.twin_id,
                Job.model == held.model,
                StageRun.stage == held.stage,
                StageRun.state == StageState.SUCCEEDED.value,
                StageRun.input_fingerprint == fingerprint,
            )
            .order_by(StageRun.finished_at.desc())
            .limit(3)
        ).all()
        manifests = [run.output_manifest for run in candidates if run.output_manifest]
    for manifest in manifests:
        outputs = manifest.get("outputs", {})
        if all(_intact(runtime, entry) for entry in outputs.values()):
            return manifest
    return None


def _intact(runtime: Runtime, entry: dict[str, Any]) -> bool:
    info = runtime.backend.head(entry["key"])
    return info is not None and info.checksum == entry["checksum"]


def _output_location(held: Claim, pipeline: Pipeline, relative: str) -> Location:
    if pipeline.output_area == "processed":
        return Location.processed(held.twin_id, held.model, relative)
    if pipeline.output_area == "inference":
        return Location.inference(held.twin_id, held.model, str(held.params.get("run") or held.job_id), relative)
    raise AssertionError(f"pipeline {pipeline.model}/{pipeline.task} has unknown output area {pipeline.output_area}")


def _upload_outputs(
    runtime: Runtime,
    held: Claim,
    pipeline: Pipeline,
    stage: Stage,
    result: StageResult,
    scratch: Path,
    heartbeat: Heartbeat,
) -> dict[str, Any]:
    declared = {spec.relative: spec for spec in stage.outputs}
    undeclared = [name for name in result.outputs if name not in declared]
    if undeclared:
        raise AssertionError(f"stage {stage.name} reported undeclared outputs {undeclared}")
    missing = [spec.relative for spec in stage.outputs if not spec.optional and not (scratch / spec.relative).is_file()]
    if missing:
        raise AssertionError(f"stage {stage.name} did not write its declared outputs {missing}")
    outputs: dict[str, Any] = {}
    for relative in result.outputs:
        if heartbeat.lease_lost.is_set():
            raise LeaseLost(f"attempt {held.attempt} of stage {stage.name} lost its lease; outputs discarded")
        key = runtime.layout.key(_output_location(held, pipeline, relative))
        info = runtime.backend.put_file(scratch / relative, key, overwrite=True)
        outputs[relative] = {"key": key, "checksum": info.checksum, "size_bytes": info.size_bytes}
    return {"outputs": outputs}


def _commit(
    runtime: Runtime,
    held: Claim,
    pipeline: Pipeline,
    manifest: dict[str, Any],
    metrics: dict[str, Any],
    message: str,
) -> StageOutcome:
    now = utcnow()
    with runtime.sessions() as session, session.begin():
        committed = guarded_update(
            session,
            held,
            state=StageState.SUCCEEDED.value,
            output_manifest=manifest,
            input_fingerprint=manifest["fingerprint"],
            metrics=metrics,
            progress=1.0,
            progress_message=message[:255],
            finished_at=now,
            lease_expires_at=None,
        )
        if not committed:
            raise LeaseLost(f"attempt {held.attempt} of stage {held.stage} lost its lease before commit; discarded")
        stage_run = session.get_one(StageRun, held.stage_run_id)
        session.refresh(stage_run)
        for relative, entry in manifest["outputs"].items():
            _upsert_asset(session, held, pipeline.output_area, relative, entry)
        job = stage_run.job
        events.record(
            session,
            "stage.state",
            job=job,
            stage_run=stage_run,
            from_state="running",
            to_state="succeeded",
            worker=runtime.worker_id,
            message=message,
            data={"outputs": sorted(manifest["outputs"]), "metrics": metrics},
        )
        advance_job(session, job)
    return StageOutcome(held.stage_run_id, StageState.SUCCEEDED, message)


def _upsert_asset(session: Session, held: Claim, area: str, relative: str, entry: dict[str, Any]) -> None:
    asset = session.scalars(select(Asset).where(Asset.key == entry["key"])).first()
    if asset is None:
        asset = Asset(key=entry["key"], twin_id=held.twin_id, area=area, kind=held.stage)
        session.add(asset)
    asset.size_bytes = entry["size_bytes"]
    asset.checksum = entry["checksum"]
    asset.original_name = relative
    asset.stage_run_id = held.stage_run_id
    asset.updated_at = utcnow()


def _finish(
    runtime: Runtime,
    held: Claim,
    state: StageState,
    message: str,
    *,
    fingerprint: str | None = None,
    manifest: dict[str, Any] | None = None,
) -> StageOutcome:
    with runtime.sessions() as session, session.begin():
        values: dict[str, Any] = dict(
            state=state.value,
            progress=1.0,
            progress_message=message[:255],
            finished_at=utcnow(),
            lease_expires_at=None,
        )
        if fingerprint is not None:
            values["input_fingerprint"] = fingerprint
        if manifest is not None:
            values["output_manifest"] = manifest
        if not guarded_update(session, held, **values):
            return StageOutcome(held.stage_run_id, None, "lease lost")
        stage_run = session.get_one(StageRun, held.stage_run_id)
        session.refresh(stage_run)
        events.record(
            session,
            "stage.state",
            job=stage_run.job,
            stage_run=stage_run,
            from_state="running",
            to_state=state.value,
            worker=runtime.worker_id,
            message=message,
        )
        advance_job(session, stage_run.job)
    return StageOutcome(held.stage_run_id, state, message)


def _fail(runtime: Runtime, held: Claim, failure: Failure) -> StageOutcome:
    kind = failure.kind.value if isinstance(failure.kind, ErrorKind) else failure.kind
    now = utcnow()
    with runtime.sessions() as session, session.begin():
        stage_run = session.get_one(StageRun, held.stage_run_id)
        if failure.kind is ErrorKind.CANCELLED:
            state, message = StageState.CANCELLED, "cancelled while running; outputs discarded"
            values: dict[str, Any] = dict(state=state.value, finished_at=now, error_kind=kind, error_message=message)
        elif failure.retryable and held.attempt < stage_run.max_attempts:
            delay_s = runtime.policy.backoff_s(held.attempt)
            state = StageState.RETRY_WAIT
            message = (
                f"attempt {held.attempt}/{stage_run.max_attempts} failed: {failure.message}; retry in {delay_s:g} s"
            )
            values = dict(
                state=state.value,
                next_attempt_at=now + timedelta(seconds=delay_s),
                error_kind=kind,
                error_message=failure.message,
            )
        else:
            state = StageState.FAILED
            if failure.retryable:
                kind = ErrorKind.RETRIES_EXHAUSTED.value
                message = f"failed after {held.attempt} attempts: {failure.message}"
            else:
                message = failure.message
            values = dict(state=state.value, finished_at=now, error_kind=kind, error_message=message)
        values["lease_expires_at"] = None
        if not guarded_update(session, held, **values):
            return StageOutcome(held.stage_run_id, None, "lease lost")
        session.refresh(stage_run)
        events.record(
            session,
            "stage.state",
            job=stage_run.job,
            stage_run=stage_run,
            from_state="running",
            to_state=state.value,
            worker=runtime.worker_id,
            message=message,
            data={"traceback": failure.detail} if failure.detail else None,
        )
        advance_job(session, stage_run.job)
    return StageOutcome(held.stage_run_id, state, message)


def _hand_back(runtime: Runtime, held: Claim, message: str) -> None:
    """Give an interrupted attempt back to the queue at once instead of waiting for its lease to expire."""
    with runtime.sessions() as session, session.begin():
        if guarded_update(session, held, state=StageState.QUEUED.value, lease_expires_at=None, worker=None):
            stage_run = session.get_one(StageRun, held.stage_run_id)
            session.refresh(stage_run)
            events.record(
                session,
                "stage.state",
                job=stage_run.job,
                stage_run=stage_run,
                from_state="running",
                to_state="queued",
                worker=runtime.worker_id,
                message=message,
            )


class _ProgressReporter:
    """Forwards progress to a live listener at once and to the database at most once per interval."""

    def __init__(self, runtime: Runtime, held: Claim, listener: ProgressListener | None) -> None:
        self._runtime = runtime
        self._held = held
        self._listener = listener
        self._last_write = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if self._listener is not None:
            self._listener(self._held.stage, fraction, message)
        now = time.monotonic()
        if now - self._last_write < self._runtime.policy.progress_write_interval_s:
            return
        self._last_write = now
        with self._runtime.sessions() as session, session.begin():
            guarded_update(session, self._held, progress=fraction, progress_message=message[:255])
