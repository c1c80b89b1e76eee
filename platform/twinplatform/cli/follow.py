"""Following a job from the CLI: drive it in-process, or watch a broker-run job in the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from twinplatform.cli import context
from twinplatform.cli.output import ProgressLine, state_text
from twinplatform.domain import JobState


def follow_job(job_id: str, *, quiet: bool = False, poll_s: float = 0.5) -> JobState:
    """Run (in-process) or watch (broker) the job until it ends, printing each stage's outcome once."""
    say: Callable[..., Any] = (lambda *a, **k: None) if quiet else click.echo
    line = None if quiet else ProgressLine()
    runtime = context.runtime()
    if context.in_process():
        from twinplatform.jobs.inline import run_job_inline

        def on_outcome(stage: str, outcome: Any) -> None:
            if line is not None:
                line.clear()
            say(f"  {stage:<10} {state_text(outcome.state.value)}  {outcome.message}")

        state = run_job_inline(runtime, job_id, on_progress=line.update if line else None, on_outcome=on_outcome)
        if line is not None:
            line.clear()
        return state
    from twinplatform.services.jobs import get_job

    reported: set[tuple[str, str, int]] = set()
    while True:
        view = get_job(runtime.sessions, job_id)
        for stage in view.stages:
            key = (stage.stage, stage.state, stage.attempt)
            if stage.state in ("succeeded", "skipped", "failed", "cancelled", "retry_wait") and key not in reported:
                reported.add(key)
                if line is not None:
                    line.clear()
                say(f"  {stage.stage:<10} {state_text(stage.state)}  {stage.error or stage.message}")
            elif stage.state == "running" and line is not None:
                line.update(stage.stage, stage.progress, f"{stage.message} ({stage.worker})")
        if JobState(view.state).is_final:
            if line is not None:
                line.clear()
            return JobState(view.state)
        time.sleep(poll_s)
