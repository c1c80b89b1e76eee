"""The Celery app and the settings that make long GPU stages safe (docs/deployment.md explains each)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from twinplatform.config import Settings

TASK_EXECUTE_STAGE = "twinplatform.execute_stage"
TASK_REAP = "twinplatform.reap"
PRIORITY_LEVELS = 10  # job priorities 0 (default) .. 9 (most urgent)


def is_redis(broker_url: str) -> bool:
    return broker_url.startswith(("redis://", "rediss://", "redis+socket://"))


def celery_config(settings: Settings) -> dict[str, Any]:
    # NOTE: the broker must never redeliver a running stage on its own: the visibility timeout (Redis) and the
    # hard time limit sit above the longest stage. Recovery from a dead worker is the database lease + reaper.
    visibility_timeout_s = int(settings.max_stage_s + 3600)
    transport_options: dict[str, Any] = {"visibility_timeout": visibility_timeout_s}
    if is_redis(settings.broker_url):
        # Redis has no native priorities: kombu emulates them with one list per step (0 is served first).
        transport_options.update(queue_order_strategy="priority", priority_steps=list(range(PRIORITY_LEVELS)), sep=":")
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,  # the database is the record; results would only go stale
        "task_acks_late": True,  # ack after the stage ends: a crash mid-stage leaves the message
        "task_reject_on_worker_lost": True,  # a killed pool child's message is requeued, not acked
        "task_acks_on_failure_or_timeout": True,  # failures are recorded in the database, not retried by Celery
        "worker_prefetch_multiplier": 1,  # a busy GPU process reserves nothing more
        "task_time_limit": int(settings.max_stage_s + 300),
        "task_soft_time_limit": int(settings.max_stage_s),
        "worker_cancel_long_running_tasks_on_connection_loss": True,  # its message is back on the queue
        "worker_max_tasks_per_child": 100,  # recycle children against CUDA/PyTorch fragmentation and leaks
        "task_default_queue": "cpu",
        "task_create_missing_queues": True,
        "task_queue_max_priority": PRIORITY_LEVELS,  # RabbitMQ: x-max-priority on declared queues
        "task_default_priority": 0,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        # For deployments that run `celery beat`: the reaper as a periodic task (routed to the cpu queue).
        # The reaper process beside every worker does the same without depending on the broker.
        "beat_schedule": {
            "reap": {"task": TASK_REAP, "schedule": settings.reaper_interval_s, "options": {"queue": "cpu"}},
        },
    }


def create_app(settings: Settings) -> Celery:
    app = Celery("twinplatform", set_as_current=False)
    app.conf.update(celery_config(settings))
    from twinplatform.worker.tasks import register_tasks

    register_tasks(app)
    return app


def broker_priority(broker_url: str, job_priority: int) -> int:
    """Map a job priority (higher = sooner) to the broker's scale (Redis via kombu: 0 is served first)."""
    level = max(0, min(PRIORITY_LEVELS - 1, job_priority))
    return PRIORITY_LEVELS - 1 - level if is_redis(broker_url) else level
