"""The Celery task: a stage run id in, the shared executor called, the next dispatch relayed. Nothing more."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_process_init

from twinplatform.config import get_settings
from twinplatform.jobs.executor import execute_stage
from twinplatform.jobs.outbox import relay
from twinplatform.jobs.runtime import Runtime, default_worker_id
from twinplatform.worker.app import TASK_EXECUTE_STAGE
from twinplatform.worker.sender import CelerySender

log = logging.getLogger(__name__)
_runtime: Runtime | None = None


def process_runtime() -> Runtime:
    """This pool process's runtime, built on first use (after the fork, so no connection is shared)."""
    global _runtime
    if _runtime is None:
        from twinplatform.wiring import build_runtime

        _runtime = build_runtime(get_settings())
    _runtime.worker_id = default_worker_id()
    return _runtime


@worker_process_init.connect
def _forget_parent_runtime(**_: object) -> None:
    global _runtime
    _runtime = None


def node_gpu_count() -> int:
    """GPUs this worker node holds (set by the supervisor alongside CUDA_VISIBLE_DEVICES)."""
    return int(os.environ.get("PLATFORM_WORKER_GPUS", "0"))


def register_tasks(app: Celery) -> None:
    sender = CelerySender(app)

    @app.task(name=TASK_EXECUTE_STAGE, ignore_result=True)
    def execute_stage_task(stage_run_id: int) -> str:
        runtime = process_runtime()
        needed = _gpus_needed(runtime, stage_run_id)
        if needed > node_gpu_count():
            # NOTE: routing sends gpu-N stages only to nodes holding N GPUs; this guards a misrouted message.
            log.error(
                "stage run %s needs %s GPUs; this node has %s: not claimed", stage_run_id, needed, node_gpu_count()
            )
            return "refused: not enough GPUs"
        outcome = execute_stage(runtime, stage_run_id)
        relay(runtime.sessions, sender)
        return outcome.state.value if outcome.state else outcome.message


def _gpus_needed(runtime: Runtime, stage_run_id: int) -> int:
    from twinplatform.db.models import StageRun

    with runtime.sessions() as session:
        stage_run = session.get(StageRun, stage_run_id)
        return stage_run.resources_gpus if stage_run is not None else 0
