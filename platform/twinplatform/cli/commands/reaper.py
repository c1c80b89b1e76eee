"""`platform reaper`: re-dispatch stages whose worker died and send dispatches that never left the outbox."""

from __future__ import annotations

import click

from twinplatform.cli import context


@click.command()
@click.option("--interval-s", type=float, default=None, help="Seconds between passes (default from settings).")
@click.option("--once", is_flag=True, help="One pass, print what it did, exit.")
def reaper(interval_s: float | None, once: bool) -> None:
    """Find running stages whose lease expired (their worker died) and dispatch them again; a stage whose
    worker died too often is failed with that reason. Every worker also runs one unless --no-reaper."""
    from twinplatform.errors import ConfigError

    settings = context.settings()
    if not settings.broker_url:
        raise ConfigError("PLATFORM_BROKER_URL is empty: the reaper dispatches to a broker; set it")
    if once:
        from twinplatform.worker.reaper_loop import run_once

        report, sent = run_once(settings)
        click.echo(
            f"requeued {len(report.requeued)}, failed {len(report.failed)}, redispatched "
            f"{len(report.redispatched)}, sent {sent}"
        )
        return
    from twinplatform.worker.reaper_loop import main

    main(["--interval-s", str(interval_s)] if interval_s else [])
