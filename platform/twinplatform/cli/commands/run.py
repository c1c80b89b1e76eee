"""`platform run --twin-id X --task preprocess|inference`: submit a job and follow it to the end."""

from __future__ import annotations

from typing import Any

import click

from twinplatform.cli import context
from twinplatform.cli.output import echo_json, state_text
from twinplatform.cli.params import parse_params


@click.command()
@click.option("--twin-id", required=True, help="The twin to run the task for.")
@click.option("--task", required=True, type=click.Choice(["preprocess", "inference"]), help="What to run.")
@click.option("--model", default="th", show_default=True, help="Which model's pipeline.")
@click.option("--n-gpus", default=0, show_default=True, type=int, help="GPUs the GPU stages need.")
@click.option("--priority", default=0, show_default=True, type=click.IntRange(0, 9), help="0-9; higher runs first.")
@click.option("--param", "raw_params", multiple=True, metavar="NAME=VALUE", help="A stage parameter (repeatable).")
@click.option("--audio", help="inference: the speech to animate (a local file, or the key of an object in the store).")
@click.option(
    "--engine",
    type=click.Choice(["auto", "neural", "classical"]),
    help="inference: the engine (default: the `engine` setting, auto = neural when its checkpoints are in the "
    "store, else classical).",
)
@click.option("--detach", is_flag=True, help="Return at once with the job id (needs a broker).")
@click.option("--json", "as_json", is_flag=True, help="Print the final job as JSON (schema in docs/cli.md).")
def run(
    twin_id: str,
    task: str,
    model: str,
    n_gpus: int,
    priority: int,
    raw_params: tuple[str, ...],
    audio: str | None,
    engine: str | None,
    detach: bool,
    as_json: bool,
) -> None:
    """Run TASK for a twin and wait for it to finish, showing progress.

    In-process (no PLATFORM_BROKER_URL) the job runs here; with a broker it is sent to the workers and
    followed. Stages whose committed outputs already match their inputs, parameters and version are skipped,
    so running the same task twice does no work the second time. Exit code 0 when the job succeeded, 6 when
    it failed or was cancelled.
    """
    from twinplatform.cli.follow import follow_job
    from twinplatform.errors import InputError, StageFailed
    from twinplatform.services.jobs import get_job
    from twinplatform.services.run_task import RunRequest, resolve_engine, submit_run

    in_process = context.in_process()
    if detach and in_process:
        raise InputError("--detach needs a broker (PLATFORM_BROKER_URL): in-process jobs run in this command")
    runtime = context.runtime()
    params = parse_params(raw_params)
    if task == "inference":
        params.setdefault("engine", engine or context.settings().engine)
    elif engine:
        raise InputError("--engine chooses the inference engine; preprocess has none")
    request = RunRequest(
        twin_id=twin_id,
        task=task,
        model=model,
        params=params,
        priority=priority,
        n_gpus=n_gpus,
        files={"audio": audio} if audio else {},
    )
    request, engine_note = resolve_engine(runtime, request)
    if engine_note and not as_json:
        click.echo(engine_note)
    submitted = submit_run(runtime, request, in_process=in_process)
    if not in_process:
        from twinplatform.worker.client import send_pending

        send_pending(context.settings(), runtime)
    say = (lambda *a, **k: None) if as_json else click.echo
    if submitted.created:
        say(f"job {submitted.job_id} queued: {model}/{task} for twin {twin_id}")
    else:
        say(f"an identical job {submitted.job_id} is already active: following it")
    if detach:
        if as_json:
            echo_json(get_job(runtime.sessions, submitted.job_id).as_json())
        else:
            click.echo(f"follow it with `platform jobs show {submitted.job_id}` or `platform status`")
        return
    state = follow_job(submitted.job_id, quiet=as_json)
    view = get_job(runtime.sessions, submitted.job_id)
    if as_json:
        echo_json(view.as_json())
    else:
        _summarise(view)
    if state.value != "succeeded":
        raise StageFailed(f"job {view.job_id} {state.value}: {view.error}. Details: `platform jobs show {view.job_id}`")


def _summarise(view: Any) -> None:
    worked = [s for s in view.stages if s.state == "succeeded"]
    click.echo(f"job {view.job_id} {state_text(view.state)}")
    if view.state == "succeeded" and not worked:
        click.echo("nothing to do: every stage was already up to date")
    outputs = [key for stage in view.stages for key in stage.outputs]
    if outputs:
        from twinplatform.services.twins import local_path_resolver

        runtime = context.runtime()
        resolve = local_path_resolver(runtime)
        click.echo(f"outputs in {runtime.backend.url}:")
        for key in outputs:
            local = resolve(key)
            click.echo(f"  {key}" + (f"\n      {local}" if local else ""))
