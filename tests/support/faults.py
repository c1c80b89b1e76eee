"""The fault-injection scenarios: each runs jobs on a real cluster, injects one fault, and audits the result.

Every scenario asserts nothing itself; it returns a `ScenarioResult` that the tests check and the table
command (benchmarks/fault_table.py) prints. The audit is the same for all:
- completed: jobs that ended SUCCEEDED (or FAILED with the expected reason, where the fault is permanent);
- duplicate commits: stage runs with more than one `running -> succeeded` transition, or whose committed
  attempt differs from the one recorded on their success event (must be 0);
- partial objects: final keys whose bytes do not match their committed checksum, objects under processed/ that
  no manifest names, or temp files left in a folder store (must be 0);
- recovery: per stage run interrupted by the fault, the time from the fault until the platform has handed it
  back (re-queued by the reaper, or taken over by a new attempt); waiting for a free worker slot after that
  is queueing, not recovery.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from tests.support.cluster import Cluster
from twinplatform.db.models import Event, StageRun
from twinplatform.jobs.outbox import relay

JOBS = 5
SLOW_S = 3.0


@dataclass
class ScenarioResult:
    name: str
    jobs: int
    completed: int
    duplicate_commits: int
    partial_objects: int
    recovery_s: list[float] = field(default_factory=list)
    notes: str = ""
    states: dict[str, str] = field(default_factory=dict)

    @property
    def median_recovery_s(self) -> float | None:
        return statistics.median(self.recovery_s) if self.recovery_s else None

    @property
    def worst_recovery_s(self) -> float | None:
        return max(self.recovery_s) if self.recovery_s else None

    def row(self) -> str:
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        return (
            f"| {self.name} | {self.jobs} | {self.completed} | {self.duplicate_commits} | {self.partial_objects} | "
            f"{fmt(self.median_recovery_s)} | {fmt(self.worst_recovery_s)} | {self.notes} |"
        )


TABLE_HEADER = (
    "| scenario | jobs | completed | duplicate commits | partial objects | median recovery | worst recovery | notes |\n"
    "|---|---|---|---|---|---|---|---|"
)


def audit(
    cluster: Cluster,
    name: str,
    job_ids: list[str],
    states: dict[str, str],
    fault_at: datetime | None,
    interrupted: set[int],
    notes: str = "",
) -> ScenarioResult:
    runtime = cluster.runtime
    duplicates = 0
    partial = 0
    named_keys: set[str] = set()
    with runtime.sessions() as session:
        runs = session.scalars(select(StageRun).where(StageRun.job_id.in_(job_ids))).all()
        events = session.scalars(select(Event).where(Event.job_id.in_(job_ids)).order_by(Event.id)).all()
        for run in runs:
            successes = [e for e in events if e.stage_run_id == run.id and e.to_state == "succeeded"]
            if len(successes) > 1:
                duplicates += 1
            if successes and run.commit_attempt is not None:
                recorded = (successes[0].data or {}).get("committed_by_attempt")
                if recorded is not None and recorded != run.commit_attempt:
                    duplicates += 1
            for entry in (run.output_manifest or {}).get("outputs", {}).values():
                named_keys.add(entry["key"])
                info = runtime.backend.head(entry["key"])
                if run.state == "succeeded" and (info is None or info.checksum != entry["checksum"]):
                    partial += 1
        recovery = []
        if fault_at is not None:
            for run_id in interrupted:
                restarts = [
                    e.created_at
                    for e in events
                    if e.stage_run_id == run_id
                    and e.created_at > fault_at
                    and (e.to_state in ("running", "queued") or e.type == "stage.redispatch")
                ]
                if restarts:
                    recovery.append((min(restarts) - fault_at).total_seconds())
    twins = {runtime.layout.parse_key(key).twin_id for key in named_keys}
    for twin_id in twins:
        for info in runtime.backend.list(f"processed/{twin_id}/"):
            if info.key not in named_keys:
                partial += 1
    partial += _temp_files_in_folder_store(cluster)
    completed = sum(1 for state in states.values() if state == "succeeded")
    return ScenarioResult(name, len(job_ids), completed, duplicates, partial, recovery, notes, states)


def _temp_files_in_folder_store(cluster: Cluster) -> int:
    url = cluster.settings.get("store_url", "")
    if not url.startswith("file://"):
        return 0
    root = Path(url.removeprefix("file://"))
    return sum(
        1
        for path in root.rglob("*")
        if path.is_file() and ".twinplatform" not in path.parts and path.name.startswith(".")
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _interrupted(cluster: Cluster, job_ids: list[str]) -> set[int]:
    with cluster.runtime.sessions() as session:
        return set(
            session.scalars(select(StageRun.id).where(StageRun.job_id.in_(job_ids), StageRun.state == "running"))
        )


def pool_child_kill(cluster: Cluster, timeout_s: float = 120) -> ScenarioResult:
    """kill -9 of the pool process running a stage, mid-stage, twice over the run."""
    twin = "fault"
    cluster.start_worker()
    job_ids = cluster.submit(twin, JOBS, slow_stage="first", slow_s=SLOW_S)
    kills, interrupted, first_fault = 0, set(), None
    for _ in range(2):
        running = [run for run in cluster.wait_until_running(job_ids) if run.id not in interrupted]
        if not running:
            time.sleep(0.2)
            continue
        victim = running[0]
        pid = int((victim.worker or "x:0").rpartition(":")[2])
        fault_at = _now()
        first_fault = first_fault or fault_at
        os.kill(pid, signal.SIGKILL)
        kills += 1
        interrupted.add(victim.id)
        time.sleep(SLOW_S / 2)
    states = cluster.wait_for(job_ids, timeout_s)
    result = audit(
        cluster,
        "kill -9 pool child",
        job_ids,
        states,
        first_fault,
        interrupted,
        f"{kills} kills; Celery requeues the message, the dead holder is taken over at once",
    )
    return result


def worker_kill(cluster: Cluster, *, timeout_s: float = 180, label: str = "kill -9 whole worker") -> ScenarioResult:
    """kill -9 of the whole worker (supervisor, node, pool, reaper) mid-stage, then a fresh worker starts."""
    twin = "fault"
    worker = cluster.start_worker()
    job_ids = cluster.submit(twin, JOBS, slow_stage="first", slow_s=SLOW_S)
    cluster.wait_until_running(job_ids)
    interrupted = _interrupted(cluster, job_ids)
    fault_at = _now()
    cluster.kill_worker(worker)
    cluster.start_worker()
    states = cluster.wait_for(job_ids, timeout_s)
    lease = cluster.settings.get("lease_s", "30")
    how = "lease expiry" if cluster.settings.get("detect_dead_local_holders") == "false" else "dead holder on this host"
    return audit(
        cluster, label, job_ids, states, fault_at, interrupted, f"recovered by the reaper ({how}; lease {lease} s)"
    )


def sigterm_during_stage(cluster: Cluster, timeout_s: float = 120) -> ScenarioResult:
    """SIGTERM to the worker mid-stage: warm shutdown lets the running stages finish; a new worker does the rest."""
    twin = "fault"
    worker = cluster.start_worker()
    job_ids = cluster.submit(twin, JOBS, slow_stage="first", slow_s=SLOW_S)
    running = cluster.wait_until_running(job_ids)
    fault_at = _now()
    code = cluster.stop_worker(worker, timeout_s=60)
    finished = {run.id for run in running} - _interrupted(cluster, job_ids)
    cluster.start_worker()
    states = cluster.wait_for(job_ids, timeout_s)
    notes = f"worker exited {code} after finishing {len(finished)}/{len(running)} running stage(s)"
    return audit(cluster, "SIGTERM during a stage", job_ids, states, fault_at, set(), notes)


def broker_restart(cluster: Cluster, restart: Callable[[], None], timeout_s: float = 180) -> ScenarioResult:
    """Jobs queued in Redis (no worker yet), Redis restarted without persistence: every message is lost."""
    twin = "fault"
    job_ids = cluster.submit(twin, JOBS, slow_stage="first", slow_s=1.0)
    fault_at = _now()
    restart()
    cluster.start_worker()
    states = cluster.wait_for(job_ids, timeout_s)
    with cluster.runtime.sessions() as session:
        first_stages = set(
            session.scalars(select(StageRun.id).where(StageRun.job_id.in_(job_ids), StageRun.position == 0))
        )
    after = cluster.settings.get("redispatch_after_s", "120")
    return audit(
        cluster,
        "Redis restart with queued jobs",
        job_ids,
        states,
        fault_at,
        first_stages,
        f"messages lost with the broker; the reaper re-sent them (redispatch after {after} s)",
    )


def database_outage(
    cluster: Cluster, refuse_for: Callable[[float], None], outage_s: float = 20.0, timeout_s: float = 180
) -> ScenarioResult:
    """The database refuses connections for 20 s while stages run."""
    twin = "fault"
    cluster.start_worker()
    job_ids = cluster.submit(twin, JOBS, slow_stage="first", slow_s=SLOW_S)
    cluster.wait_until_running(job_ids)
    refuse_for(outage_s)
    time.sleep(outage_s + 0.5)
    back_at = _now()
    states = cluster.wait_for(job_ids, timeout_s)
    with cluster.runtime.sessions() as session:
        later = [
            e.created_at
            for e in session.scalars(select(Event).where(Event.job_id.in_(job_ids), Event.created_at > back_at))
        ]
    result = audit(
        cluster,
        f"database refuses connections {outage_s:g} s",
        job_ids,
        states,
        None,
        set(),
        "stages wait out the outage; leases outlive it",
    )
    if later:
        result.recovery_s = [(min(later) - back_at).total_seconds()]
    return result


def s3_faults(
    cluster: Cluster,
    enable: Callable[[], None],
    disable: Callable[[], None],
    stats: Callable[[], str],
    timeout_s: float = 180,
) -> ScenarioResult:
    """Connection resets, 503 Slow Down and slow responses between boto3 and the S3 endpoint."""
    job_ids = cluster.submit("fault", JOBS, send=False, slow_stage="first", slow_s=0.5)
    enable()
    relay(cluster.runtime.sessions, cluster.sender())
    cluster.start_worker()
    states = cluster.wait_for(job_ids, timeout_s)
    disable()
    return audit(cluster, "S3 resets, 5xx, slow responses", job_ids, states, None, set(), stats())
