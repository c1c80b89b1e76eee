"""RabbitMQ works as the broker too: jobs run, retries happen, priorities order the queue."""

from __future__ import annotations

import pytest

from tests.support.cluster import Cluster, worker_log_tail
from twinplatform.services.jobs import get_job

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.timeout(180)]


def test_jobs_run_through_rabbitmq(rabbitmq_cluster: Cluster) -> None:
    cluster = rabbitmq_cluster
    twin = cluster.make_twin()
    cluster.start_worker()
    counter = cluster.work_dir / "count"
    flaky = cluster.submit(twin, 1, flaky_stage="first", flaky_failures=1, counter_file=str(counter))
    plain = cluster.submit("rabbit", 3)
    states = cluster.wait_for([*flaky, *plain], 90)
    assert set(states.values()) == {"succeeded"}, worker_log_tail(cluster)
    assert get_job(cluster.runtime.sessions, flaky[0]).stages[0].attempt == 2


def test_priorities_order_the_rabbitmq_queue(rabbitmq_cluster: Cluster) -> None:
    from pipelines.registry import load_pipeline
    from tests.support import kit_pipelines
    from twinplatform.jobs.outbox import relay
    from twinplatform.jobs.submit import submit_job

    cluster = rabbitmq_cluster
    twin = cluster.make_twin()
    kit_pipelines.register()
    pipeline = load_pipeline("kit", "preprocess")
    low = [submit_job(cluster.runtime, pipeline, twin, params={"n": i}, executor="celery").job_id for i in range(4)]
    high = submit_job(cluster.runtime, pipeline, twin, params={"n": 99}, executor="celery", priority=9).job_id
    relay(cluster.runtime.sessions, cluster.sender())
    cluster.start_worker(concurrency=1)
    assert set(cluster.wait_for([*low, high], 90).values()) == {"succeeded"}, worker_log_tail(cluster)
    started = {job_id: get_job(cluster.runtime.sessions, job_id).started_at for job_id in [*low, high]}
    assert started[high] == min(started.values())
