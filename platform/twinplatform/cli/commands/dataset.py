"""`platform dataset build|status|ls`: assemble a model's training dataset from many twins."""

from __future__ import annotations

import time
from typing import Any

import click

from twinplatform.cli import context
from twinplatform.cli.output import echo_json, short, state_text, table
from twinplatform.cli.params import parse_params


@click.group()
def dataset() -> None:
    """Build training datasets (facesync, bilayer, lawdnet, perceptalign) from many twins."""


@dataset.command("build")
@click.option("--model", required=True, help="The dataset model: facesync, bilayer, lawdnet or perceptalign.")
@click.option("--name", required=True, help="The dataset's name: it lives under datasets/MODEL/NAME/.")
@click.option("--twins", default="", help="Member twins, comma-separated: a,b,c.")
@click.option("--add", "extend", is_flag=True, help="Keep the twins of the last build and add --twins to them.")
@click.option("--param", "raw_params", multiple=True, metavar="NAME=VALUE", help="A dataset parameter (repeatable).")
@click.option(
    "--preprocess-param",
    "raw_preprocess_params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of every member's preprocess (repeatable).",
)
@click.option("--priority", default=0, show_default=True, type=click.IntRange(0, 9), help="0-9; higher runs first.")
@click.option("--json", "as_json", is_flag=True, help="Print the dataset summary as JSON (as `dataset status`).")
def build(
    model: str,
    name: str,
    twins: str,
    extend: bool,
    raw_params: tuple[str, ...],
    raw_preprocess_params: tuple[str, ...],
    priority: int,
    as_json: bool,
) -> None:
    """Preprocess every member twin for MODEL, then assemble the dataset NAME from those that succeeded.

    A twin whose preprocess fails (no face, corrupt upload...) is excluded and reported with its reason; the dataset
    is built from the others. Running the same build again does no work. Exit code 0 when the dataset was built,
    6 when it could not be (e.g. no usable twin).
    """
    from twinplatform.cli.follow import follow_job
    from twinplatform.errors import StageFailed
    from twinplatform.services.datasets import (
        DatasetRequest,
        check_request,
        describe_dataset,
        member_outcomes,
        submit_dataset_job,
        submit_member_preprocess,
    )

    runtime = context.runtime()
    in_process = context.in_process()
    say = (lambda *a, **k: None) if as_json else click.echo
    request = check_request(
        runtime,
        DatasetRequest(
            model=model,
            name=name,
            twins=tuple(twins.split(",")) if twins else (),
            params=parse_params(raw_params),
            preprocess_params=parse_params(raw_preprocess_params, "--preprocess-param"),
            extend=extend,
            priority=priority,
        ),
    )
    say(f"dataset {model}/{name}: {len(request.twins)} twin(s): {', '.join(request.twins)}")
    submitted, excluded = submit_member_preprocess(runtime, request, in_process=in_process)
    _send(runtime, in_process)
    for twin, reason in excluded.items():
        say(f"twin {twin}: excluded: {reason}")
    jobs: dict[str, str] = {}
    for twin, job in submitted.items():
        say(f"twin {twin}: {model}/preprocess job {job.job_id}" + ("" if job.created else " (already active)"))
        if in_process:
            follow_job(job.job_id, quiet=as_json)
        jobs[twin] = job.job_id
    if not in_process:
        _wait_all(runtime, list(jobs.values()))
    usable, failed = member_outcomes(runtime, jobs)
    for twin, reason in failed.items():
        say(f"twin {twin}: excluded: {reason}")
    excluded.update(failed)
    job = submit_dataset_job(runtime, request, usable, excluded, in_process=in_process)
    _send(runtime, in_process)
    say(f"{model}/dataset job {job.job_id} over {len(usable)} twin(s)" + ("" if job.created else " (already active)"))
    state = follow_job(job.job_id, quiet=as_json)
    summary = describe_dataset(runtime, model, name)
    if as_json:
        echo_json(summary.as_json())
    else:
        _show(runtime, summary)
    if state.value != "succeeded":
        raise StageFailed(
            f"dataset {model}/{name} was not built: {summary.job.error}. Details: `platform jobs show {job.job_id}`"
        )


@dataset.command("status")
@click.argument("name")
@click.option("--model", required=True, help="The dataset model.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (schema in docs/cli.md).")
def status(name: str, model: str, as_json: bool) -> None:
    """The last build of dataset NAME: state, member twins, excluded twins and why, split sizes, files."""
    from twinplatform.services.datasets import describe_dataset

    runtime = context.runtime()
    summary = describe_dataset(runtime, model, name)
    if as_json:
        echo_json(summary.as_json())
    else:
        _show(runtime, summary)


@dataset.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_command(as_json: bool) -> None:
    """Every dataset and the state of its last build."""
    from twinplatform.services.datasets import list_datasets

    builds = list_datasets(context.runtime())
    if as_json:
        echo_json([{"model": b.model, "name": b.dataset, **b.as_json()} for b in builds])
        return
    if not builds:
        click.echo("no datasets yet: `platform dataset build --model MODEL --name NAME --twins a,b`")
        return
    table(
        ["MODEL", "NAME", "STATE", "TWINS", "EXCLUDED", "BUILT", "ERROR"],
        [
            [
                b.model,
                b.dataset,
                state_text(b.state),
                len(b.params.get("twins", [])),
                len(b.params.get("excluded", {})),
                b.finished_at or b.created_at,
                short(b.error, 50),
            ]
            for b in builds
        ],
    )


def _send(runtime: Any, in_process: bool) -> None:
    if not in_process:
        from twinplatform.worker.client import send_pending

        send_pending(context.settings(), runtime)


def _wait_all(runtime: Any, job_ids: list[str], poll_s: float = 1.0) -> None:
    """With a broker: wait until every member job has ended (the workers run them)."""
    from twinplatform.domain import JobState
    from twinplatform.services.jobs import get_job

    pending = set(job_ids)
    while pending:
        pending = {job_id for job_id in pending if not JobState(get_job(runtime.sessions, job_id).state).is_final}
        if pending:
            time.sleep(poll_s)


def _show(runtime: Any, summary: Any) -> None:
    job = summary.job
    click.echo(f"dataset {summary.model}/{summary.name}: {state_text(job.state)} (job {job.job_id})")
    if job.error:
        click.echo(f"  error: {job.error}")
    manifest = summary.manifest or {}
    for twin, entry in (manifest.get("twins") or {}).items():
        # NOTE: the headline numbers only; nested details stay in the manifest (`--json`, or the file itself)
        taken = ", ".join(
            f"{key} {value}"
            for key, value in (entry.get("taken") or {}).items()
            if isinstance(value, (int, float, str)) and not isinstance(value, bool)
        )
        click.echo(f"  twin {twin}: {taken}")
    excluded = manifest.get("excluded") if manifest else job.params.get("excluded", {})
    for twin, reason in (excluded or {}).items():
        click.echo(f"  twin {twin}: EXCLUDED: {reason}")
    if manifest.get("splits"):
        click.echo("  splits: " + ", ".join(f"{split} {count}" for split, count in manifest["splits"].items()))
    if summary.files:
        from twinplatform.services.twins import local_path_resolver

        local = local_path_resolver(runtime)(summary.prefix + "manifest.json")
        where = f" ({local.parent})" if local is not None else ""
        click.echo(f"  {summary.files} files under {runtime.backend.url.rstrip('/')}/{summary.prefix}{where}")
