"""The Celery task: a stage run id in, the shared executor called, the next dispatch relayed. Nothing more."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

from twinplatform.config import get_settings
from twinplatform.jobs.executor import execute_stage
from twinplatform.jobs.outbox import relay
from twinplatform.jobs.reaper import reap
from twinplatform.jobs.runtime import Runtime, default_worker_id
from twinplatform.worker.app import TASK_EXECUTE_STAGE, TASK_REAP
from twinplatform.worker.sender import CelerySender

_runtime: Runtime | None = None


def process_runtime() -> Runtime:
    """This pool process's runtime, built on first use (after the fork, so no connection is shared)."""
    global _runtime
    if _runtime is None:
        from twinplatform.wiring import build_runtime

        _runtime = build_runtime(get_settings())
    _runtime.worker_id = default_worker_id()
    return _runtime


@worker_process_init.connect  # type: ignore[untyped-decorator]  # celery ships no type hints
def _forget_parent_runtime(**_: object) -> None:
    global _runtime
    _runtime = None


def node_gpu_count() -> int:
    """GPUs this worker node holds (set by the supervisor alongside CUDA_VISIBLE_DEVICES)."""
    return int(os.environ.get("PLATFORM_WORKER_GPUS", "0"))


def register_tasks(app: Celery) -> None:
    sender = CelerySender(app)

    @app.task(name=TASK_EXECUTE_STAGE, ignore_result=True, shared=False)  # type: ignore[untyped-decorator]
    def execute_stage_task(stage_run_id: int) -> str:
        runtime = process_runtime()
        # NOTE: routing sends gpu-N stages only to nodes holding N GPUs; max_gpus guards a misrouted message
        # (the claim leaves such a stage alone, and the reaper's re-dispatch routes it again).
        outcome = execute_stage(runtime, stage_run_id, max_gpus=node_gpu_count())
        if outcome.dispatched_next:
            relay(runtime.sessions, sender)
        return outcome.state.value if outcome.state else outcome.message

    @app.task(name=TASK_REAP, ignore_result=True, shared=False)  # type: ignore[untyped-decorator]
    def reap_task() -> dict[str, object]:
        """One reaper pass (for `celery beat`): re-queue lost stages, send due dispatches."""
        runtime = process_runtime()
        report = reap(runtime)
        sent = relay(runtime.sessions, sender)
        return {"requeued": report.requeued, "failed": report.failed, "redispatched": report.redispatched, "sent": sent}
