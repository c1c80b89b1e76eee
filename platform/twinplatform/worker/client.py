"""What the CLI needs from Celery mode: send pending dispatches now, revoke a cancelled job's messages."""

from __future__ import annotations

from twinplatform.config import Settings
from twinplatform.jobs.outbox import relay
from twinplatform.jobs.runtime import Runtime
from twinplatform.worker.app import create_app
from twinplatform.worker.sender import CelerySender


def send_pending(settings: Settings, runtime: Runtime) -> int:
    """Relay the outbox now (the reaper would within its interval); a broker outage leaves rows pending."""
    return relay(runtime.sessions, CelerySender(create_app(settings)))


def revoke(settings: Settings, task_ids: list[str]) -> None:
    """Best effort: workers drop these messages on receipt; the claim's job-state check is the real guard."""
    if task_ids:
        create_app(settings).control.revoke(task_ids)
