"""`platform config`: the effective configuration with every secret masked."""

from __future__ import annotations

import click

from twinplatform.cli import context
from twinplatform.cli.output import echo_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as a JSON object.")
def config(as_json: bool) -> None:
    """Print where the database, store, mirror and broker are (from PLATFORM_* variables, the config file,
    or the per-user defaults)."""
    values = context.settings().masked()
    if as_json:
        echo_json(values)
        return
    width = max(len(name) for name in values)
    for name, value in values.items():
        click.echo(f"{name:<{width}}  {value}")
