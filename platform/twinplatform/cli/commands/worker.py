"""`platform worker`: run Celery worker nodes (one process per GPU group, or a CPU node) and a reaper."""

from __future__ import annotations

import logging

import click

from twinplatform.cli import context


@click.command()
@click.option("--queues", default="cpu", show_default=True, help="cpu, gpu or cpu,gpu.")
@click.option("--gpus", default="", help="GPU indices to use, e.g. 0,1 (default: every visible GPU).")
@click.option("--gpus-per-process", default=1, show_default=True, help="GPUs each node process holds.")
@click.option("--concurrency", default=2, show_default=True, help="Pool processes of the CPU node.")
@click.option("--reaper/--no-reaper", default=True, show_default=True, help="Also run a reaper process.")
def worker(queues: str, gpus: str, gpus_per_process: int, concurrency: int, reaper: bool) -> None:
    """Serve jobs from the broker (PLATFORM_BROKER_URL) until SIGTERM.

    On SIGTERM the running stages finish (Celery warm shutdown) before the nodes exit; a worker killed
    outright loses nothing: its stages' leases expire and a reaper dispatches them again.
    """
    from twinplatform.errors import ConfigError, InputError
    from twinplatform.services.gpus import visible_gpus
    from twinplatform.worker.supervisor import plan_nodes, supervise

    settings = context.settings()
    if not settings.broker_url:
        raise ConfigError("PLATFORM_BROKER_URL is empty: set it to a redis:// or amqp:// broker to run workers")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        plan = plan_nodes(
            [q.strip() for q in queues.split(",") if q.strip()],
            [g.strip() for g in gpus.split(",") if g.strip()],
            gpus_per_process=gpus_per_process,
            concurrency=concurrency,
            visible_gpus=len(visible_gpus()),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    for note in plan.notes:
        click.secho(note, fg="yellow", err=True)
    for node in plan.nodes:
        click.echo(f"node {node.name}: queues {','.join(node.queues)}, GPUs {','.join(node.gpus) or 'none'}", err=True)
    raise SystemExit(supervise(plan, reaper=reaper))
