"""The in-process driver: runs a job's stages one after another in this process (no broker needed).

It is the embedded default's executor and shares every rule with the Celery path: the same claim, lease,
retry and commit code in `executor.py`. A stage held by another live worker is waited for, and a stage whose
worker died (lease expired) is taken over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from twinplatform.db.base import utcnow
from twinplatform.db.models import Job, StageRun
from twinplatform.domain import JobState, StageState
from twinplatform.errors import JobNotFound
from twinplatform.jobs.executor import ProgressListener, StageOutcome, execute_stage
from twinplatform.jobs.lease import claimable_reason
from twinplatform.jobs.progression import advance_job
from twinplatform.jobs.runtime import Runtime

#: called after each stage run ends (for the CLI's per-stage lines)
OutcomeListener = Callable[[str, StageOutcome], None]

_MAX_WAIT_STEP_S = 1.0


def run_job_inline(
    runtime: Runtime,
    job_id: str,
    *,
    on_progress: ProgressListener | None = None,
    on_outcome: OutcomeListener | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobState:
    """Drive the job until it reaches a final state; return that state."""
    while True:
        with runtime.sessions() as session, session.begin():
            job = session.get(Job, job_id)
            if job is None:
                raise JobNotFound(job_id)
            runnable = advance_job(session, job)
            if JobState(job.state).is_final:
                return JobState(job.state)
            stage_run = runnable[0]
            stage_name, stage_run_id = stage_run.stage, stage_run.id
            wait_reason = claimable_reason(
                stage_run, job.state, utcnow(), detect_dead_holders=runtime.policy.detect_dead_local_holders
            )
            wait_until = _wait_until(stage_run)
        if wait_reason is not None:
            # A retry is scheduled, or another worker holds the lease: wait (bounded steps) and look again.
            delay_s = max(0.05, min(_MAX_WAIT_STEP_S, (wait_until - utcnow()).total_seconds())) if wait_until else 0.2
            sleep(delay_s)
            continue
        outcome = execute_stage(runtime, stage_run_id, on_progress=on_progress)
        if on_outcome is not None and outcome.state is not None:
            on_outcome(stage_name, outcome)


def _wait_until(stage_run: StageRun) -> datetime | None:
    if stage_run.state == StageState.RETRY_WAIT.value:
        return stage_run.next_attempt_at
    return stage_run.lease_expires_at
