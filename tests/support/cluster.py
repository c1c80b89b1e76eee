"""A real Celery deployment on this machine for tests and the fault suite: worker processes, a broker, a
PostgreSQL database and a store, plus the means to submit jobs, kill processes and audit the outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pipelines.media.synthetic import make_audio
from pipelines.registry import load_pipeline
from tests.support import kit_pipelines
from twinplatform.config import Settings
from twinplatform.db.models import Event, Job, StageRun
from twinplatform.jobs.outbox import relay
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import submit_job
from twinplatform.services.ingest import ingest_files
from twinplatform.services.twins import ensure_twin
from twinplatform.wiring import build_runtime
from twinplatform.worker.app import create_app
from twinplatform.worker.sender import CelerySender

REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM_EXE = Path(sys.executable).with_name("platform")


@dataclass
class Cluster:
    """Settings shared by this test process and the worker processes it starts (through PLATFORM_* vars)."""

    work_dir: Path
    settings: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: settings that differ for this test process (e.g. a direct database URL while workers go through a proxy)
    client_overrides: dict[str, str] = field(default_factory=dict)
    _runtime: Runtime | None = None

    # -- setup -----------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
        env.update({f"PLATFORM_{k.upper()}": v for k, v in self.settings.items()})
        env["PLATFORM_CONFIG_FILE"] = str(self.work_dir / "absent.toml")
        env["PLATFORM_PIPELINE_PLUGINS"] = "tests.support.kit_pipelines:register"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
        return env

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            kit_pipelines.register()
            self._runtime = build_runtime(Settings(**{**self.settings, **self.client_overrides}))  # type: ignore[arg-type]
            self._runtime.worker_id = f"test-client:{os.getpid()}"
        return self._runtime

    def sender(self) -> CelerySender:
        return CelerySender(create_app(Settings(**self.settings)))  # type: ignore[arg-type]

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                self.kill_worker(process)
        if self._runtime is not None:
            self._runtime.engine.dispose()

    # -- workers ---------------------------------------------------------------------------------------
    def start_worker(self, *, concurrency: int = 2, reaper: bool = True, name: str = "w") -> subprocess.Popen[bytes]:
        log = (self.work_dir / f"worker-{name}-{len(self.workers)}.log").open("wb")
        command = [str(PLATFORM_EXE), "worker", "--queues", "cpu", "--concurrency", str(concurrency)]
        if not reaper:
            command.append("--no-reaper")
        process = subprocess.Popen(
            command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.work_dir
        )
        log.close()
        self.workers.append(process)
        return process

    def stop_worker(self, process: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout_s)

    @staticmethod
    def kill_worker(process: subprocess.Popen[bytes]) -> None:
        """kill -9 of the whole worker: supervisor, Celery node, pool children and reaper at once."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    # -- jobs ------------------------------------------------------------------------------------------
    def make_twin(self, twin_id: str = "fault") -> str:
        ensure_twin(self.runtime.sessions, twin_id)
        voice = make_audio(self.work_dir / f"{twin_id}.wav", seconds=0.2)
        ingest_files(self.runtime, twin_id, [voice])
        return twin_id

    def submit(self, twin_id: str, count: int, *, send: bool = True, **params: Any) -> list[str]:
        """`count` jobs: for twin `twin_id` when count is 1, else for twins `{twin_id}-0`, `{twin_id}-1`..."""
        kit_pipelines.register()
        pipeline = load_pipeline("kit", "preprocess")
        twins = [twin_id] if count == 1 else [self.make_twin(f"{twin_id}-{index}") for index in range(count)]
        ids = [
            submit_job(self.runtime, pipeline, twin, params={"n": index, **params}, executor="celery").job_id
            for index, twin in enumerate(twins)
        ]
        if send:
            relay(self.runtime.sessions, self.sender())
        return ids

    def states(self, job_ids: list[str]) -> dict[str, str]:
        with self.runtime.sessions() as session:
            return {job.id: job.state for job in session.scalars(select(Job).where(Job.id.in_(job_ids)))}

    def wait_for(self, job_ids: list[str], timeout_s: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while True:
            states = self.states(job_ids)
            if all(state in ("succeeded", "failed", "cancelled") for state in states.values()):
                return states
            if time.monotonic() > deadline:
                return states
            time.sleep(0.2)

    def wait_until_running(
        self, job_ids: list[str], timeout_s: float = 30, *, min_attempt: int = 1, settle_s: float = 0.5
    ) -> list[StageRun]:
        """Stage runs of these jobs that a worker has claimed (attempt >= min_attempt), once they have been
        running for `settle_s` (so a fault lands inside the stage's work, not in its bookkeeping)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.runtime.sessions() as session:
                running = session.scalars(
                    select(StageRun).where(
                        StageRun.job_id.in_(job_ids),
                        StageRun.state == "running",
                        StageRun.attempt >= min_attempt,
                    )
                ).all()
                if running:
                    time.sleep(settle_s)
                    return list(running)
            time.sleep(0.1)
        raise TimeoutError(f"no stage of {len(job_ids)} jobs started within {timeout_s} s")

    def events(self, job_ids: list[str]) -> list[Event]:
        with self.runtime.sessions() as session:
            return list(session.scalars(select(Event).where(Event.job_id.in_(job_ids)).order_by(Event.id)))


def worker_log_tail(cluster: Cluster, lines: int = 40) -> str:
    out = []
    for log in sorted(cluster.work_dir.glob("worker-*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name}\n" + "\n".join(text))
    return "\n".join(out)
