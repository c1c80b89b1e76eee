"""Executing one stage run: claim its lease, resolve inputs, skip if up to date, run, commit exactly once.

Serves both modes: the in-process driver calls it in a loop; a Celery task calls it once per message. Every
database step waits out a short outage (dbretry); every commit goes through the fenced steps of commit.py.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from pipelines.base import Pipeline, Stage, StageContext
from pipelines.registry import load_pipeline
from twinplatform.db.base import utcnow
from twinplatform.db.models import Asset, Job, StageRun
from twinplatform.domain import ErrorKind, StageState
from twinplatform.errors import LeaseLost
from twinplatform.jobs import commit, events, outbox
from twinplatform.jobs.dbretry import with_db_retry
from twinplatform.jobs.failures import Failure, classify
from twinplatform.jobs.fingerprint import input_fingerprint
from twinplatform.jobs.inputs import ResolvedInput, output_location, resolve_inputs
from twinplatform.jobs.lease import Claim, Heartbeat, claim, end_attempt, guarded_update
from twinplatform.jobs.progression import advance_job
from twinplatform.jobs.runtime import Runtime

#: called with (stage name, fraction 0..1, message) for a live display
ProgressListener = Callable[[str, float, str], None]


@dataclass(frozen=True)
class StageOutcome:
    stage_run_id: int
    state: StageState | None  # None when the stage could not be claimed or this attempt lost its lease
    message: str
    dispatched_next: bool = False  # a next stage was written to the outbox (a worker relays it at once)


@dataclass
class _Prepared:
    """What one read of the database tells before running: roll forward, skip, or run with these inputs."""

    committed_earlier: dict[str, Any] | None = None
    resolved: dict[str, ResolvedInput] | None = None
    skip_reason: str | None = None
    fingerprint: str = ""
    candidates: list[dict[str, Any]] | None = None


def execute_stage(
    runtime: Runtime, stage_run_id: int, *, on_progress: ProgressListener | None = None, max_gpus: int | None = None
) -> StageOutcome:
    """Run one stage run to a recorded outcome. Never raises for stage failures: they are recorded.

    `max_gpus`: the GPUs this worker holds; a stage needing more is not claimed (left for another worker).
    """
    held = with_db_retry(
        lambda: claim(
            runtime.sessions,
            stage_run_id,
            runtime.worker_id,
            runtime.policy.lease_s,
            max_worker_losses=runtime.policy.max_worker_losses,
            detect_dead_holders=runtime.policy.detect_dead_local_holders,
            max_gpus=max_gpus,
        ),
        tolerance_s=runtime.policy.db_outage_tolerance_s,
        what="claiming a stage",
    )
    if held is None:
        return StageOutcome(stage_run_id, None, "not claimable")
    heartbeat = Heartbeat(runtime.sessions, held, lease_s=runtime.policy.lease_s, interval_s=runtime.policy.heartbeat_s)
    output_dir = runtime.scratch_root / held.job_id / held.stage / f"attempt-{held.attempt}"
    manifest: dict[str, Any] = {}
    try:
        heartbeat.start()
        pipeline = load_pipeline(held.model, held.task)
        stage = pipeline.stage(held.stage)
        prepared: _Prepared = _db(runtime, "reading the stage", lambda: _prepare(runtime, held, pipeline, stage))
        if prepared.committed_earlier is not None:
            # A previous attempt committed and then died before finishing: roll its promotion forward.
            committed = prepared.committed_earlier
            commit.promote(runtime, committed)
            message = f"outputs committed by attempt {committed['attempt']} promoted after its worker was lost"
            dispatched = commit.complete(runtime, held, pipeline, committed, message)
            if dispatched is None:
                return StageOutcome(stage_run_id, None, "lease lost")
            commit.discard_scratch(runtime, committed)
            _prune_stale(runtime, held, pipeline, stage, committed)
            return StageOutcome(stage_run_id, StageState.SUCCEEDED, message, dispatched)
        if prepared.skip_reason is not None:
            return _finish(runtime, held, StageState.SKIPPED, prepared.skip_reason)
        resolved, fingerprint = prepared.resolved or {}, prepared.fingerprint
        stage_params = _stage_params(held.params)
        prior = next(
            (m for m in prepared.candidates or [] if all(_intact(runtime, e) for e in m.get("outputs", {}).values())),
            None,
        )
        if prior is not None:
            _prune_stale(runtime, held, pipeline, stage, prior)
            return _finish(
                runtime,
                held,
                StageState.SKIPPED,
                f"up to date: outputs committed by job {prior['job_id']} match these inputs, parameters and "
                f"version {stage.version}",
                fingerprint=fingerprint,
                manifest=prior,
            )
        local_inputs = {name: runtime.mirror.fetch(item.key, item.checksum).path for name, item in resolved.items()}
        shutil.rmtree(output_dir, ignore_errors=True)
        output_dir.mkdir(parents=True)
        context = StageContext(
            inputs=local_inputs,
            output_dir=output_dir,
            params=stage_params,
            progress=_ProgressReporter(runtime, held, on_progress),
            is_cancelled=lambda: heartbeat.cancel_requested.is_set() or heartbeat.lease_lost.is_set(),
            sources={name: {"key": item.key, "checksum": item.version} for name, item in resolved.items()},
        )
        started = time.monotonic()
        result = stage.run(context)
        elapsed_s = time.monotonic() - started
        context.check_cancelled()
        manifest = commit.upload_to_scratch(runtime, held, pipeline, stage, result, output_dir, heartbeat)
        manifest.update(
            job_id=held.job_id,
            attempt=held.attempt,
            stage=stage.name,
            version=stage.version,
            fingerprint=fingerprint,
            params=stage_params,
            inputs={name: {"key": item.key, "checksum": item.version} for name, item in resolved.items()},
        )
        metrics = dict(result.metrics, elapsed_s=round(elapsed_s, 3))
        message = result.message or "done"
        if manifest["outputs"]:
            commit.fenced_commit(runtime, held, manifest, metrics)
            commit.promote(runtime, manifest)
            dispatched = commit.complete(runtime, held, pipeline, manifest, message, metrics=metrics)
        else:
            dispatched = commit.complete(runtime, held, pipeline, manifest, message, metrics=metrics, fence=True)
        if dispatched is None:
            return StageOutcome(stage_run_id, None, "lease lost after commit; the next attempt finishes it")
        commit.discard_scratch(runtime, manifest)
        _prune_stale(runtime, held, pipeline, stage, manifest)
        return StageOutcome(stage_run_id, StageState.SUCCEEDED, message, dispatched)
    except LeaseLost as exc:
        commit.discard_scratch(runtime, manifest)
        return StageOutcome(stage_run_id, None, str(exc))
    except (KeyboardInterrupt, SystemExit) as exc:
        _hand_back(runtime, held, f"interrupted ({type(exc).__name__}): queued again")
        raise
    except Exception as exc:  # noqa: BLE001  (recorded as the stage's failure, never swallowed silently)
        if manifest and not _is_committed_by(runtime, held):
            commit.discard_scratch(runtime, manifest)
        return _fail(runtime, held, classify(exc, common_prefix=f"common/{held.model}/"))
    finally:
        heartbeat.stop()
        shutil.rmtree(output_dir, ignore_errors=True)


def _db(runtime: Runtime, what: str, fn: Callable[[], Any]) -> Any:
    return with_db_retry(fn, tolerance_s=runtime.policy.db_outage_tolerance_s, what=what)


def _prepare(runtime: Runtime, held: Claim, pipeline: Pipeline, stage: Stage) -> _Prepared:
    """One read: an earlier attempt's unfinished commit, else the inputs, the skip reason, the fingerprint and
    the committed manifests that share it (their objects are checked in the store afterwards)."""
    if held.commit_attempt is not None and held.commit_attempt != held.attempt:
        return _Prepared(committed_earlier=dict(held.output_manifest or {}))
    with runtime.sessions() as session:
        resolved = resolve_inputs(
            session, held, stage, output_area=pipeline.output_area, layout=runtime.layout, backend=runtime.backend
        )
        reason = stage.applies(set(resolved), _stage_params(held.params))
        if reason is not None:
            return _Prepared(skip_reason=reason)
        fingerprint = input_fingerprint(
            stage.name,
            stage.version,
            _fingerprint_params(held, pipeline),
            {n: item.version for n, item in resolved.items()},
        )
        candidates = session.scalars(
            select(StageRun.output_manifest)
            .join(Job)
            .where(
                Job.twin_id == held.twin_id if held.twin_id is not None else Job.twin_id.is_(None),
                Job.model == held.model,
                StageRun.stage == held.stage,
                StageRun.state == StageState.SUCCEEDED.value,
                StageRun.input_fingerprint == fingerprint,
            )
            .order_by(StageRun.finished_at.desc())
            .limit(3)
        ).all()
    return _Prepared(resolved=resolved, fingerprint=fingerprint, candidates=[m for m in candidates if m])


def _prune_stale(runtime: Runtime, held: Claim, pipeline: Pipeline, stage: Stage, manifest: dict[str, Any]) -> None:
    """After a stage committed (or was found up to date), delete what an earlier run left among its outputs that
    this run did not write, so a reader never takes a stale file for a current one:

    - an optional output this run did not write (say `video/audio.wav` after the twin's video was replaced by one
      without sound, which later stages would otherwise read as the new video's sound);
    - for a dataset build, every file under the dataset's folder that is not in its manifest (say, the samples of
      a twin now excluded), so the folder holds exactly the manifest's files.

    Runs after the commit: readers never see a half-written set."""
    written = manifest.get("outputs", {})
    if pipeline.output_area == "datasets":
        keep = {entry["key"] for entry in written.values()}
        prefix = runtime.layout.key(output_location(held, pipeline.output_area, "x"))[: -len("x")]
        stale = [info.key for info in runtime.backend.list(prefix) if info.key not in keep]
    else:
        unwritten = [
            runtime.layout.key(output_location(held, pipeline.output_area, spec.relative))
            for spec in stage.outputs
            if spec.optional and not spec.is_folder and spec.relative not in written
        ]
        if not unwritten:
            return
        # NOTE: the platform registers every output it commits, so one query finds them (no request per key).
        with runtime.sessions() as session:
            stale = list(session.scalars(select(Asset.key).where(Asset.key.in_(unwritten))))
    for key in stale:
        runtime.backend.delete(key)
    if stale:
        with runtime.sessions() as session, session.begin():
            session.execute(delete(Asset).where(Asset.key.in_(stale)))
            events.record_ids(
                session,
                "outputs.pruned",
                twin_id=held.twin_id,
                job_id=held.job_id,
                message=f"stage {stage.name}: removed {len(stale)} file(s) an earlier run wrote and this one did not",
                data={"removed": stale[:100]},
            )


def _is_committed_by(runtime: Runtime, held: Claim) -> bool:
    with runtime.sessions() as session:
        return session.get_one(StageRun, held.stage_run_id).commit_attempt == held.attempt


def _stage_params(job_params: dict[str, Any]) -> dict[str, Any]:
    """Parameters a stage sees: the job's params without the platform's own bookkeeping keys."""
    return {key: value for key, value in job_params.items() if key not in {"inputs", "run"}}


def _fingerprint_params(held: Claim, pipeline: Pipeline) -> dict[str, Any]:
    """The parameters that decide whether committed outputs can stand in for this stage's work. Outputs of an
    inference run live under that run's own folder, so only the same run's outputs can (a retried run skips what it
    finished; a new run with the same audio does its own work)."""
    params = _stage_params(held.params)
    if pipeline.output_area == "inference":
        params["run"] = str(held.params.get("run") or held.job_id)
    return params


def _intact(runtime: Runtime, entry: dict[str, Any]) -> bool:
    info = runtime.backend.head(entry["key"])
    return info is not None and info.checksum == entry["checksum"]


def _finish(
    runtime: Runtime,
    held: Claim,
    state: StageState,
    message: str,
    *,
    fingerprint: str | None = None,
    manifest: dict[str, Any] | None = None,
) -> StageOutcome:
    values: dict[str, Any] = dict(progress=1.0, progress_message=message[:255], finished_at=utcnow())
    if fingerprint is not None:
        values["input_fingerprint"] = fingerprint
    if manifest is not None:
        values["output_manifest"] = manifest

    def transaction() -> bool | None:
        with runtime.sessions() as session, session.begin():
            stage_run = end_attempt(session, held, state, message=message, actor=runtime.worker_id, **values)
            return None if stage_run is None else commit.dispatched_next(session, stage_run)

    dispatched = _db(runtime, "recording a stage's end", transaction)
    if dispatched is None:
        return StageOutcome(held.stage_run_id, None, "lease lost")
    return StageOutcome(held.stage_run_id, state, message, dispatched)


def _fail(runtime: Runtime, held: Claim, failure: Failure) -> StageOutcome:
    kind = failure.kind.value if isinstance(failure.kind, ErrorKind) else failure.kind

    def transaction() -> StageOutcome:
        now = utcnow()
        with runtime.sessions() as session, session.begin():
            max_attempts = session.get_one(StageRun, held.stage_run_id).max_attempts
            retry_at, kind_value = None, kind
            if failure.kind is ErrorKind.CANCELLED:
                state, message = StageState.CANCELLED, "cancelled while running; outputs discarded"
                values: dict[str, Any] = dict(finished_at=now, error_kind=kind_value, error_message=message)
            elif failure.retryable and held.attempt < max_attempts:
                delay_s = runtime.policy.backoff_s(held.attempt)
                state, retry_at = StageState.RETRY_WAIT, now + timedelta(seconds=delay_s)
                message = f"attempt {held.attempt}/{max_attempts} failed: {failure.message}; retry in {delay_s:g} s"
                values = dict(next_attempt_at=retry_at, error_kind=kind_value, error_message=failure.message)
            else:
                state = StageState.FAILED
                if failure.retryable:
                    kind_value, message = (
                        ErrorKind.RETRIES_EXHAUSTED.value,
                        f"failed after {held.attempt} attempts: {failure.message}",
                    )
                else:
                    message = failure.message
                values = dict(finished_at=now, error_kind=kind_value, error_message=message)
            data = {"traceback": failure.detail} if failure.detail else None
            stage_run = end_attempt(session, held, state, message=message, actor=runtime.worker_id, data=data, **values)
            if stage_run is None:
                return StageOutcome(held.stage_run_id, None, "lease lost")
            if retry_at is not None:
                outbox.enqueue(session, stage_run.job, stage_run, reason="retry", not_before=retry_at)
            advance_job(session, stage_run.job)
            return StageOutcome(held.stage_run_id, state, message)

    result: StageOutcome = _db(runtime, "recording a stage failure", transaction)
    return result


def _hand_back(runtime: Runtime, held: Claim, message: str) -> None:
    """Give an interrupted attempt back to the queue at once instead of waiting for its lease to expire."""
    with runtime.sessions() as session, session.begin():
        stage_run = end_attempt(session, held, StageState.QUEUED, message=message, actor=runtime.worker_id, worker=None)
        if stage_run is not None:
            outbox.enqueue(session, stage_run.job, stage_run, reason="handed back")


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
        try:
            with self._runtime.sessions() as session, session.begin():
                guarded_update(session, self._held, progress=fraction, progress_message=message[:255])
        except Exception as exc:  # noqa: BLE001
            from twinplatform.jobs.dbretry import is_connection_error

            if not is_connection_error(exc):
                raise
            # NOTE: progress is advisory; during a database outage it is dropped, the heartbeat keeps the lease.
