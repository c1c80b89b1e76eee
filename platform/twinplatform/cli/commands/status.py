"""`platform status`: recent jobs, one row per stage, with state, attempt, progress and the last error."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

from twinplatform.cli import context
from twinplatform.cli.output import echo_json, short, state_text, table


@click.command()
@click.option("--twin-id", default=None, help="Only this twin's jobs.")
@click.option("--dataset", default=None, help="Only the jobs that built this dataset.")
@click.option("--limit", default=10, show_default=True, help="How many recent jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (a list of jobs; schema in docs/cli.md).")
def status(twin_id: str | None, dataset: str | None, limit: int, as_json: bool) -> None:
    """What ran, what is running, what failed and why."""
    from twinplatform.services.jobs import list_jobs
    from twinplatform.services.twins import checked_twin_id, require_twin

    runtime = context.runtime()
    if twin_id is not None:
        with runtime.sessions() as session:
            require_twin(session, checked_twin_id(twin_id))
    jobs = list_jobs(runtime.sessions, twin_id=twin_id, dataset=dataset, limit=limit)
    if as_json:
        echo_json([job.as_json() for job in jobs])
        return
    if not jobs:
        click.echo("no jobs yet: `platform run --twin-id TWIN --task preprocess`")
        return
    rows = []
    for job in jobs:
        rows.append(
            [
                job.subject,
                job.job_id[:12],
                f"{job.model}/{job.task}",
                "",
                state_text(job.state),
                "",
                f"{job.progress * 100:.0f}%",
                job.created_at,
                short(job.error, 60),
            ]
        )
        for stage in job.stages:
            took = f"{stage.duration_s:.1f}s" if stage.duration_s else ""
            rows.append(
                [
                    "",
                    "",
                    "",
                    stage.stage,
                    state_text(stage.state),
                    f"{stage.attempt}/{stage.max_attempts}",
                    f"{stage.progress * 100:.0f}%",
                    took,
                    short(_detail(stage), 70),
                ]
            )
    table(["TWIN", "JOB", "TASK", "STAGE", "STATE", "ATTEMPT", "PROGRESS", "STARTED/TOOK", "DETAIL"], rows)


def _detail(stage: Any) -> str:
    """The error of a failed stage; for a running one, where it runs and how fresh its heartbeat is."""
    if stage.error:
        return f"{stage.error_kind}: {stage.error}"
    if stage.state == "running":
        heartbeat = "no heartbeat yet"
        if stage.heartbeat_at:
            age_s = (datetime.now(timezone.utc) - datetime.fromisoformat(stage.heartbeat_at)).total_seconds()
            heartbeat = f"heartbeat {age_s:.0f}s ago"
        return f"on {stage.worker}, {heartbeat}; {stage.message}"
    return str(stage.message)
