"""Committing a stage's outputs exactly once: scratch upload, fenced commit, promotion, completion.

1. Upload every output under the attempt's scratch prefix (`scratch/{job}/{attempt}/{stage}/...`).
2. Fenced commit: one compare-and-set records the manifest and `commit_attempt` while this attempt still
   holds the lease and no other attempt has committed. At most one attempt ever gets past this point.
3. Promote: server-side copy of each scratch object to its final key. Readers only ever see final keys with
   the committed bytes: a stale attempt never reaches step 3, and a copy is atomic per object.
4. Complete: mark the stage SUCCEEDED, register the assets, log the event and advance the job, in one
   transaction; then delete the scratch objects.

A crash between 2 and 4 leaves a committed but unfinished stage; the next attempt (after the reaper finds
the lease expired) rolls it forward from the manifest instead of running the stage again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipelines.base import Pipeline, Stage, StageResult
from storage_layout import Location
from twinplatform.db.base import utcnow
from twinplatform.db.models import Asset, StageRun
from twinplatform.domain import StageState
from twinplatform.errors import LeaseLost
from twinplatform.jobs import events
from twinplatform.jobs.dbretry import with_db_retry
from twinplatform.jobs.inputs import output_location as job_output_location
from twinplatform.jobs.lease import Claim, Heartbeat, guarded_update
from twinplatform.jobs.progression import advance_after_success, advance_job
from twinplatform.jobs.runtime import Runtime


def output_location(held: Claim, pipeline: Pipeline, relative: str) -> Location:
    return job_output_location(held, pipeline.output_area, relative)


def upload_to_scratch(
    runtime: Runtime,
    held: Claim,
    pipeline: Pipeline,
    stage: Stage,
    result: StageResult,
    output_dir: Path,
    heartbeat: Heartbeat,
) -> dict[str, Any]:
    """Check the declared outputs and upload them under this attempt's scratch prefix; return the manifest."""
    undeclared = [name for name in result.outputs if not any(spec.covers(name) for spec in stage.outputs)]
    if undeclared:
        raise AssertionError(f"stage {stage.name} reported undeclared outputs {undeclared[:5]}")
    missing = [
        spec.relative
        for spec in stage.outputs
        if not spec.optional
        and not (
            any(spec.covers(name) for name in result.outputs)
            if spec.is_folder
            else (output_dir / spec.relative).is_file()
        )
    ]
    if missing:
        raise AssertionError(f"stage {stage.name} did not write its declared outputs {missing}")
    outputs: dict[str, Any] = {}
    for relative in result.outputs:
        if heartbeat.lease_lost.is_set():
            raise LeaseLost(f"attempt {held.attempt} of stage {stage.name} lost its lease; outputs discarded")
        scratch_key = runtime.layout.key(Location.scratch(held.job_id, held.attempt, f"{stage.name}/{relative}"))
        info = runtime.backend.put_file(output_dir / relative, scratch_key, overwrite=True)
        outputs[relative] = {
            "key": runtime.layout.key(output_location(held, pipeline, relative)),
            "scratch_key": scratch_key,
            "checksum": info.checksum,
            "size_bytes": info.size_bytes,
        }
    return {"outputs": outputs}


def fenced_commit(runtime: Runtime, held: Claim, manifest: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Step 2: record the manifest as this attempt's commit, or raise LeaseLost if another attempt owns it."""

    def transaction() -> bool:
        with runtime.sessions() as session, session.begin():
            return guarded_update(
                session,
                held,
                extra_where=[StageRun.commit_attempt.is_(None)],
                commit_attempt=held.attempt,
                output_manifest=manifest,
                input_fingerprint=manifest["fingerprint"],
                metrics=metrics,
            )

    if not with_db_retry(transaction, tolerance_s=runtime.policy.db_outage_tolerance_s, what="committing outputs"):
        raise LeaseLost(f"attempt {held.attempt} of stage {held.stage} lost its lease before commit; discarded")


def promote(runtime: Runtime, manifest: dict[str, Any]) -> None:
    """Step 3: copy each committed scratch object to its final key (idempotent: done copies are skipped)."""
    for entry in manifest["outputs"].values():
        current = runtime.backend.head(entry["key"])
        if current is not None and current.checksum == entry["checksum"]:
            continue
        runtime.backend.copy(entry["scratch_key"], entry["key"])


def complete(
    runtime: Runtime,
    held: Claim,
    pipeline: Pipeline,
    manifest: dict[str, Any],
    message: str,
    *,
    metrics: dict[str, Any] | None = None,
    fence: bool = False,
) -> bool | None:
    """Step 4: mark the stage succeeded with its assets, in one transaction. Returns None if the lease was
    lost, else whether a next stage was dispatched.

    With `fence` steps 2 and 4 happen in this one transaction: right for a stage that has nothing to promote
    (no outputs), where no reader can see anything between the two.
    """

    def transaction() -> bool | None:
        with runtime.sessions() as session, session.begin():
            values: dict[str, Any] = dict(progress=1.0, progress_message=message[:255], finished_at=utcnow())
            extra_where = []
            if fence:
                values.update(
                    commit_attempt=held.attempt,
                    output_manifest=manifest,
                    input_fingerprint=manifest["fingerprint"],
                    metrics=metrics,
                )
                extra_where.append(StageRun.commit_attempt.is_(None))
            values.update(state=StageState.SUCCEEDED.value, lease_expires_at=None)
            if not guarded_update(session, held, extra_where=extra_where, **values):
                return None
            # The manifest names the attempt that committed it (this one, or an earlier one rolled forward).
            events.record_ids(
                session,
                "stage.state",
                twin_id=held.twin_id,
                job_id=held.job_id,
                stage_run_id=held.stage_run_id,
                attempt=held.attempt,
                from_state=StageState.RUNNING.value,
                to_state=StageState.SUCCEEDED.value,
                worker=runtime.worker_id,
                message=message,
                data={
                    "outputs": sorted(manifest["outputs"]),
                    "committed_by_attempt": manifest["attempt"],
                    "metrics": metrics,
                },
            )
            for relative, entry in manifest["outputs"].items():
                _upsert_asset(session, held, pipeline.output_area, relative, entry)
            return advance_after_success(session, job_id=held.job_id, twin_id=held.twin_id)

    return with_db_retry(transaction, tolerance_s=runtime.policy.db_outage_tolerance_s, what="completing a stage")


def dispatched_next(session: Session, stage_run: StageRun) -> bool:
    """Advance the job after a stage ended; True when that queued a next stage for the broker."""
    runnable = advance_job(session, stage_run.job)
    return bool(runnable) and stage_run.job.executor == "celery" and runnable[0].state == StageState.QUEUED.value


def discard_scratch(runtime: Runtime, manifest: dict[str, Any]) -> None:
    for entry in manifest.get("outputs", {}).values():
        if "scratch_key" in entry:
            runtime.backend.delete(entry["scratch_key"])


def _upsert_asset(session: Session, held: Claim, area: str, relative: str, entry: dict[str, Any]) -> None:
    """Point the asset row of a final key at this commit. Two jobs of one twin may commit the same key at
    once; the loser of the insert race updates the winner's row instead (a savepoint keeps the transaction)."""
    for _ in range(2):
        asset = session.scalars(select(Asset).where(Asset.key == entry["key"])).first()
        if asset is None:
            try:
                with session.begin_nested():
                    asset = Asset(key=entry["key"], twin_id=held.twin_id, area=area, kind=held.stage)
                    _fill(asset, held, relative, entry)
                    session.add(asset)
                return
            except IntegrityError:
                continue
        _fill(asset, held, relative, entry)
        return
    raise AssertionError(f"asset row for {entry['key']} could neither be inserted nor found")


def _fill(asset: Asset, held: Claim, relative: str, entry: dict[str, Any]) -> None:
    asset.size_bytes = entry["size_bytes"]
    asset.checksum = entry["checksum"]
    asset.original_name = relative
    asset.stage_run_id = held.stage_run_id
    asset.updated_at = utcnow()
