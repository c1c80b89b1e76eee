"""`platform jobs ls|show|retry|cancel`."""

from __future__ import annotations

import click

from twinplatform.cli import context
from twinplatform.cli.output import echo_json, short, state_text, table


@click.group()
def jobs() -> None:
    """List, inspect, retry and cancel jobs."""


@jobs.command("ls")
@click.option("--twin-id", default=None, help="Only this twin's jobs.")
@click.option("--state", default=None, type=click.Choice(["queued", "running", "succeeded", "failed", "cancelled"]))
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (schema in docs/cli.md).")
def list_command(twin_id: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """Recent jobs, newest first."""
    from twinplatform.services.jobs import list_jobs

    found = list_jobs(context.runtime().sessions, twin_id=twin_id, state=state, limit=limit)
    if as_json:
        echo_json([job.as_json() for job in found])
        return
    table(
        ["JOB", "TWIN", "TASK", "STATE", "PROGRESS", "CREATED", "FINISHED", "ERROR"],
        [
            [
                j.job_id,
                j.subject,
                f"{j.model}/{j.task}",
                state_text(j.state),
                f"{j.progress * 100:.0f}%",
                j.created_at,
                j.finished_at or "",
                short(j.error, 50),
            ]
            for j in found
        ],
    )


@jobs.command("show")
@click.argument("job_id")
@click.option("--events", "with_events", is_flag=True, help="Include the job's event log.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (schema in docs/cli.md).")
def show(job_id: str, with_events: bool, as_json: bool) -> None:
    """One job: its stages with attempts, timings, errors and outputs (JOB_ID or a unique prefix)."""
    from twinplatform.services.jobs import get_job

    view = get_job(context.runtime().sessions, job_id, with_events=with_events)
    if as_json:
        echo_json(view.as_json())
        return
    click.echo(f"job {view.job_id}  {view.model}/{view.task}  {view.subject}  {state_text(view.state)}")
    click.echo(f"  created {view.created_at}  started {view.started_at or '-'}  finished {view.finished_at or '-'}")
    if view.error:
        click.secho(f"  error ({view.error_kind}): {view.error}", fg="red")
    for stage in view.stages:
        click.echo(
            f"  stage {stage.stage:<10} {state_text(stage.state)}  attempt {stage.attempt}/{stage.max_attempts}"
            f"  {stage.duration_s or 0:.2f}s  {stage.worker or ''}"
        )
        if stage.error:
            click.echo(f"      error ({stage.error_kind}): {stage.error}")
        elif stage.message:
            click.echo(f"      {stage.message}")
        for key in stage.outputs:
            click.echo(f"      -> {key}")
    for event in view.events:
        states = f"{event['from'] or ''}->{event['to']}" if event["to"] else ""
        click.echo(f"  {event['at']}  {event['type']:<14} {states:<22} {short(event['message'], 80)}")


@jobs.command("retry")
@click.argument("job_id")
@click.option("--detach", is_flag=True, help="Return once queued (needs a broker).")
def retry(job_id: str, detach: bool) -> None:
    """Run a failed or cancelled job again from its failed stage (finished stages are kept)."""
    from twinplatform.cli.follow import follow_job
    from twinplatform.errors import StageFailed
    from twinplatform.services.jobs import get_job, retry_job

    runtime = context.runtime()
    view = get_job(runtime.sessions, job_id)
    stages = retry_job(runtime.sessions, view.job_id)
    click.echo(f"job {view.job_id} queued again from {', '.join(stages) or 'its unfinished stages'}")
    if not context.in_process():
        from twinplatform.worker.client import send_pending

        send_pending(context.settings(), runtime)
        if detach:
            return
    state = follow_job(view.job_id)
    final = get_job(runtime.sessions, view.job_id)
    click.echo(f"job {final.job_id} {state_text(final.state)}")
    if state.value != "succeeded":
        raise StageFailed(f"job {final.job_id} {state.value}: {final.error}")


@jobs.command("cancel")
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a queued or running job; a running stage stops at its next heartbeat without committing."""
    from twinplatform.services.jobs import cancel_job, get_job

    runtime = context.runtime()
    view = get_job(runtime.sessions, job_id)
    task_ids = cancel_job(runtime.sessions, view.job_id)
    if not context.in_process():
        from twinplatform.worker.client import revoke

        revoke(context.settings(), task_ids)
    click.echo(f"job {view.job_id} cancelled")
