"""The Celery app's configuration: the settings that keep long GPU stages safe, and the periodic reaper."""

from __future__ import annotations

from pathlib import Path

from twinplatform.config import Settings
from twinplatform.worker.app import TASK_EXECUTE_STAGE, TASK_REAP, broker_priority, create_app


def _settings(tmp_path: Path, broker: str) -> Settings:
    return Settings(data_dir=tmp_path, broker_url=broker, max_stage_s=7200, reaper_interval_s=7)


def test_long_stage_settings(tmp_path: Path) -> None:
    conf = create_app(_settings(tmp_path, "redis://127.0.0.1:6379/0")).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss
    assert conf.task_soft_time_limit == 7200 and conf.task_time_limit > 7200
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.broker_transport_options["queue_order_strategy"] == "priority"


def test_tasks_and_the_periodic_reaper_are_registered(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, "amqp://guest:guest@127.0.0.1:5672//"))
    assert {TASK_EXECUTE_STAGE, TASK_REAP} <= set(app.tasks)
    assert app.conf.beat_schedule["reap"]["task"] == TASK_REAP and app.conf.beat_schedule["reap"]["schedule"] == 7
    assert "queue_order_strategy" not in app.conf.broker_transport_options  # RabbitMQ has native priorities


def test_priorities_map_to_each_broker() -> None:
    assert broker_priority("redis://x", 9) == 0 and broker_priority("redis://x", 0) == 9  # kombu: 0 first
    assert broker_priority("amqp://x", 9) == 9 and broker_priority("amqp://x", 42) == 9
