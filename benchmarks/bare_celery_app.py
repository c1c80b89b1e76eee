"""The baseline for benchmarks/engine_overhead.py: a bare Celery no-op task with the platform's worker settings.

Started as a worker by the benchmark: `celery -A benchmarks.bare_celery_app worker ...`; BENCH_BROKER_URL picks
the broker and result backend (the same Redis the platform uses in the comparison).
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("bare", broker=os.environ["BENCH_BROKER_URL"], backend=os.environ["BENCH_BROKER_URL"])
app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1)


@app.task(name="bare.noop")
def noop() -> None:
    return None
