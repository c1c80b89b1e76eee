"""Publishing outbox dispatches with Celery (the `Sender` the outbox relay calls)."""

from __future__ import annotations

from celery import Celery

from twinplatform.jobs.outbox import Dispatch
from twinplatform.worker.app import TASK_EXECUTE_STAGE, broker_priority


class CelerySender:
    def __init__(self, app: Celery) -> None:
        self._app = app
        self._broker_url = str(app.conf.broker_url)

    def __call__(self, dispatch: Dispatch) -> None:
        self._app.send_task(
            TASK_EXECUTE_STAGE,
            args=[dispatch.stage_run_id],
            task_id=dispatch.task_id,
            queue=dispatch.queue,
            priority=broker_priority(self._broker_url, dispatch.priority),
            # A broker outage must not hang the caller: the row stays pending and the relay retries it.
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0},
        )
