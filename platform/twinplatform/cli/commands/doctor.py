"""`platform doctor`: check config, database, store, mirror, ffmpeg, broker, GPUs, torch and model files."""

from __future__ import annotations

import click

from twinplatform.cli import context
from twinplatform.cli.output import echo_json

MARKS = {"ok": ("ok  ", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red")}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(as_json: bool) -> None:
    """Check that this machine can run the platform, and say what to fix. Exit code 3 if any check fails."""
    from twinplatform.doctor import run_checks

    checks = run_checks(context.settings())
    if as_json:
        echo_json([check.__dict__ for check in checks])
    else:
        for check in checks:
            mark, colour = MARKS[check.status]
            click.echo(f"[{click.style(mark, fg=colour)}] {check.name:<9} {check.detail}")
            if check.fix and check.status != "ok":
                click.echo(f"           fix: {check.fix}")
    if any(check.status == "fail" for check in checks):
        raise SystemExit(3)
