"""--n-gpus is honoured: a stage needing N GPUs goes to queue gpu-N and only a worker holding N claims it."""

from __future__ import annotations

from sqlalchemy import select

from pipelines.registry import load_pipeline
from tests.support import kit_pipelines
from twinplatform.db.models import Outbox, StageRun
from twinplatform.jobs.lease import claim
from twinplatform.jobs.runtime import Runtime
from twinplatform.jobs.submit import submit_job
from twinplatform.services.twins import create_twin

kit_pipelines.register()


def test_a_two_gpu_stage_is_routed_to_gpu_2_and_claimed_only_with_two_gpus(runtime: Runtime) -> None:
    create_twin(runtime.sessions, "dave")
    job_id = submit_job(runtime, load_pipeline("kit", "gpu"), "dave", requested_gpus=2, executor="celery").job_id
    with runtime.sessions() as session:
        stage_run = session.scalars(select(StageRun).where(StageRun.job_id == job_id)).one()
        (dispatch,) = session.scalars(select(Outbox).where(Outbox.job_id == job_id)).all()
    assert stage_run.resources_gpus == 2 and dispatch.queue == "gpu-2"
    assert claim(runtime.sessions, stage_run.id, "one-gpu:1", lease_s=30, max_gpus=1) is None
    assert claim(runtime.sessions, stage_run.id, "cpu-node:1", lease_s=30, max_gpus=0) is None
    held = claim(runtime.sessions, stage_run.id, "two-gpus:1", lease_s=30, max_gpus=2)
    assert held is not None and held.attempt == 1


def test_cpu_stages_ignore_requested_gpus(runtime: Runtime) -> None:
    create_twin(runtime.sessions, "erin")
    job_id = submit_job(runtime, load_pipeline("kit", "noop"), "erin", requested_gpus=2, executor="celery").job_id
    with runtime.sessions() as session:
        (dispatch,) = session.scalars(select(Outbox).where(Outbox.job_id == job_id)).all()
    assert dispatch.queue == "cpu"
