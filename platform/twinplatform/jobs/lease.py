"""Leases on stage runs: claim (attempt number as fencing token), renew by heartbeat, and guarded writes.

Every write made on behalf of an attempt is a compare-and-set on (id, attempt, state='running'): once another
attempt has taken the stage over, a stale attempt's writes match no row and it learns it lost the lease.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from twinplatform.db.base import utcnow
from twinplatform.db.models import Job, StageRun
from twinplatform.domain import ACTIVE_JOB_STATES, JobState, StageState
from twinplatform.jobs import events


@dataclass(frozen=True)
class Claim:
    stage_run_id: int
    attempt: int
    job_id: str
    twin_id: str | None  # None for a dataset job (its member twins are in params["twins"])
    model: str
    task: str
    stage: str
    params: dict[str, Any]
    commit_attempt: int | None = None  # an earlier attempt that committed and died before completing
    output_manifest: dict[str, Any] | None = None


class LeaseView(Protocol):
    """What a claim decision reads of a stage run (an ORM row or a plain result row)."""

    state: str
    next_attempt_at: datetime | None
    lease_expires_at: datetime | None
    worker: str | None


def claimable_reason(
    stage_run: LeaseView, job_state: str, now: datetime, *, detect_dead_holders: bool = True
) -> str | None:
    """None if the stage run can be claimed now, else why not (for logs and the inline driver)."""
    if JobState(job_state) not in ACTIVE_JOB_STATES:
        return f"job is {job_state}"
    state = StageState(stage_run.state)
    if state is StageState.QUEUED:
        return None
    if state is StageState.RETRY_WAIT:
        if stage_run.next_attempt_at is None or stage_run.next_attempt_at <= now:
            return None
        return f"waiting to retry until {stage_run.next_attempt_at.isoformat(timespec='seconds')}"
    if state is StageState.RUNNING:
        # A lease that expired, or that was never renewed, belongs to a worker that died: take it over.
        expires = stage_run.lease_expires_at
        if expires is None or expires <= now or (detect_dead_holders and holder_is_dead(stage_run.worker)):
            return None
        return f"running on {stage_run.worker} (lease until {expires.isoformat(timespec='seconds')})"
    return f"stage is {state.value}"


def holder_is_dead(worker: str | None) -> bool:
    """True when the lease holder ("host:pid") is a process on this host that no longer exists.

    NOTE: this lets a killed pool child's stage be taken over at once on the same machine instead of after
    its lease; holders on other hosts are only ever judged by their lease.
    """
    if not worker or ":" not in worker:
        return False
    host, _, pid_text = worker.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not _process_alive(int(pid_text))


def _process_alive(pid: int) -> bool:
    """True for a running process; a zombie (killed, not yet reaped by its parent) counts as dead."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(
    sessions: sessionmaker[Session],
    stage_run_id: int,
    worker: str,
    lease_s: float,
    *,
    max_worker_losses: int = 3,
    detect_dead_holders: bool = True,
    max_gpus: int | None = None,
) -> Claim | None:
    """Take the lease on a stage run; None when it is not claimable or another worker won the race.

    Taking over from a dead worker counts a loss; at `max_worker_losses` the stage is failed instead, so a
    stage that kills its worker (out of memory, a segfault) does not loop forever. With `max_gpus`, a stage
    needing more GPUs than this worker holds is left for another worker.

    NOTE: this runs once per stage on every worker, so it is written as plain statements (one read, two
    compare-and-set updates, the event rows) rather than through ORM objects.
    """
    with sessions() as session, session.begin():
        row = session.execute(
            select(
                StageRun.state,
                StageRun.attempt,
                StageRun.worker,
                StageRun.lost_count,
                StageRun.started_at,
                StageRun.lease_expires_at,
                StageRun.next_attempt_at,
                StageRun.resources_gpus,
                StageRun.stage,
                StageRun.commit_attempt,
                StageRun.output_manifest,
                Job.id.label("job_id"),
                Job.state.label("job_state"),
                Job.twin_id,
                Job.model,
                Job.task,
                Job.params,
            )
            .join(Job, Job.id == StageRun.job_id)
            .where(StageRun.id == stage_run_id)
        ).one_or_none()
        if row is None or (max_gpus is not None and row.resources_gpus > max_gpus):
            return None
        now = utcnow()
        if claimable_reason(row, row.job_state, now, detect_dead_holders=detect_dead_holders) is not None:
            return None
        takeover = row.state == StageState.RUNNING.value
        if takeover and row.lost_count + 1 >= max_worker_losses:
            fail_lost_stage(session, session.get_one(StageRun, stage_run_id), now, max_worker_losses)
            return None
        attempt = row.attempt + 1
        result = session.execute(
            update(StageRun)
            .where(StageRun.id == stage_run_id, StageRun.attempt == row.attempt, StageRun.state == row.state)
            .values(
                state=StageState.RUNNING.value,
                attempt=attempt,
                worker=worker,
                lease_expires_at=now + timedelta(seconds=lease_s),
                heartbeat_at=None,
                started_at=row.started_at or now,
                finished_at=None,
                progress=0.0,
                progress_message="",
                error_kind=None,
                error_message=None,
                lost_count=row.lost_count + (1 if takeover else 0),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        ids = dict(twin_id=row.twin_id, job_id=row.job_id)
        events.record_ids(
            session,
            "stage.state",
            **ids,
            stage_run_id=stage_run_id,
            attempt=attempt,
            from_state=row.state,
            to_state=StageState.RUNNING.value,
            worker=worker,
            message=(
                f"attempt {attempt} took over from {row.worker} whose lease expired"
                if takeover
                else f"attempt {attempt} started"
            ),
        )
        started_job = session.execute(
            update(Job)
            .where(Job.id == row.job_id, Job.state == JobState.QUEUED.value)
            .values(state=JobState.RUNNING.value, started_at=now)
            .execution_options(synchronize_session=False)
        )
        if started_job.rowcount == 1:  # type: ignore[attr-defined]
            events.record_ids(session, "job.state", **ids, from_state="queued", to_state="running")
        return Claim(
            stage_run_id=stage_run_id,
            attempt=attempt,
            job_id=row.job_id,
            twin_id=row.twin_id,
            model=row.model,
            task=row.task,
            stage=row.stage,
            params=dict(row.params or {}),
            commit_attempt=row.commit_attempt,
            output_manifest=row.output_manifest,
        )


def fail_lost_stage(session: Session, stage_run: StageRun, now: datetime, max_worker_losses: int) -> None:
    """Fail a stage whose worker died `max_worker_losses` times (its lease is already known to be expired)."""
    from twinplatform.domain import ErrorKind
    from twinplatform.jobs.progression import advance_job

    previous = stage_run.state
    message = (
        f"the worker running this stage died {max_worker_losses} times (last: {stage_run.worker}); "
        "it is not retried again: check the worker's logs for out-of-memory kills or crashes"
    )
    stage_run.lost_count += 1
    stage_run.state = StageState.FAILED.value
    stage_run.error_kind = ErrorKind.WORKER_LOST.value
    stage_run.error_message = message
    stage_run.finished_at = now
    stage_run.lease_expires_at = None
    events.record(
        session,
        "stage.state",
        job=stage_run.job,
        stage_run=stage_run,
        from_state=previous,
        to_state=StageState.FAILED.value,
        message=message,
    )
    advance_job(session, stage_run.job)


def mirror_update(stage_run: StageRun, values: dict[str, Any]) -> None:
    """Give the loaded row the values a compare-and-set just wrote, without another round trip or a flush."""
    for name, value in values.items():
        set_committed_value(stage_run, name, value)


def end_attempt(
    session: Session,
    claim: Claim,
    to_state: StageState,
    *,
    message: str,
    actor: str,
    data: dict[str, Any] | None = None,
    extra_where: Sequence[Any] = (),
    **values: Any,
) -> StageRun | None:
    """Move this attempt's stage run from running to `to_state` (compare-and-set on the attempt) and log the
    transition; the loaded row (with its job) is returned, or None when the attempt no longer holds the lease."""
    # The job and all its stage runs come in the same query: completing a stage advances the job next.
    stage_run = session.get_one(
        StageRun, claim.stage_run_id, options=[joinedload(StageRun.job).joinedload(Job.stage_runs)]
    )
    values = {"state": to_state.value, "lease_expires_at": None, **values}
    if not guarded_update(session, claim, extra_where=extra_where, **values):
        return None
    mirror_update(stage_run, values)
    events.record(
        session,
        "stage.state",
        job=stage_run.job,
        stage_run=stage_run,
        from_state=StageState.RUNNING.value,
        to_state=to_state.value,
        worker=actor,
        message=message,
        data=data,
    )
    return stage_run


def guarded_update(session: Session, claim: Claim, *, extra_where: Sequence[Any] = (), **values: Any) -> bool:
    """Update the stage run only if this attempt still holds it; True on success."""
    result = session.execute(
        update(StageRun)
        .where(
            StageRun.id == claim.stage_run_id,
            StageRun.attempt == claim.attempt,
            StageRun.state == StageState.RUNNING.value,
            *extra_where,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class Heartbeat(threading.Thread):
    """Renews the lease every `interval_s` and notices when the lease was lost or the job was cancelled."""

    def __init__(self, sessions: sessionmaker[Session], claim: Claim, *, lease_s: float, interval_s: float) -> None:
        super().__init__(name=f"heartbeat-{claim.stage_run_id}", daemon=True)
        self._sessions = sessions
        self._claim = claim
        self._lease_s = lease_s
        self._interval_s = interval_s
        self._stop_event = threading.Event()
        self.lease_lost = threading.Event()
        self.cancel_requested = threading.Event()
        self.beats = 0

    def run(self) -> None:
        while not self._stop_event.wait(self._interval_s):
            try:
                self.beat()
            except Exception:  # noqa: BLE001
                # NOTE: a database blip must not kill the heartbeat; if it lasts past the lease, the lease is
                # lost and the commit's compare-and-set refuses this attempt's outputs.
                continue
            if self.lease_lost.is_set():
                return

    def beat(self) -> None:
        now = utcnow()
        with self._sessions() as session, session.begin():
            held = guarded_update(
                session,
                self._claim,
                heartbeat_at=now,
                lease_expires_at=now + timedelta(seconds=self._lease_s),
            )
            if not held:
                self.lease_lost.set()
                return
            job = session.get(Job, self._claim.job_id)
            if job is not None and job.state == JobState.CANCELLED.value:
                self.cancel_requested.set()
        self.beats += 1

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=self._interval_s + 5)
