"""Entry point of the `platform` command: a lazily loading click group and the error-to-exit-code mapping.

Subcommands are imported only when invoked, so `platform --help` never imports torch, SQLAlchemy or boto3.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from twinplatform import __version__

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "twin": ("twinplatform.cli.commands.twin:twin", "Create, ingest into, list, show and remove twins."),
    "run": ("twinplatform.cli.commands.run:run", "Run a task (preprocess, inference) for a twin."),
    "status": ("twinplatform.cli.commands.status:status", "Recent jobs and their stages at a glance."),
    "dataset": (
        "twinplatform.cli.commands.dataset:dataset",
        "Build a model's training dataset from many twins; show its status.",
    ),
    "jobs": ("twinplatform.cli.commands.jobs:jobs", "List, inspect, retry and cancel jobs."),
    "db": ("twinplatform.cli.commands.db:db", "Database schema migrations."),
    "config": (
        "twinplatform.cli.commands.config:config",
        "Print the effective configuration (secrets masked).",
    ),
    "doctor": (
        "twinplatform.cli.commands.doctor:doctor",
        "Check config, database, store, ffmpeg, GPUs, models.",
    ),
    "worker": ("twinplatform.cli.commands.worker:worker", "Run Celery worker nodes (one per GPU) and a reaper."),
    "reaper": ("twinplatform.cli.commands.reaper:reaper", "Re-dispatch stages whose worker died."),
    "models": ("twinplatform.cli.commands.models:models", "Check model files (checkpoints, FLAME) before a run."),
    "demo": (
        "twinplatform.cli.commands.demo:demo",
        "Make a demo twin from generated media and preprocess it.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target[0].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target[0]} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # NOTE: uses the static help text so listing commands imports none of them.
        rows = [(name, LAZY_COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from twinplatform.errors import PlatformError

        try:
            return super().invoke(ctx)
        except PlatformError as error:
            from twinplatform.cli.exit_codes import for_error

            click.secho(f"error: {error}", fg="red", err=True)
            ctx.exit(for_error(error))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="platform")
def cli() -> None:
    """Twin platform: track digital twins, keep their files in an S3-shaped store, run guaranteed jobs.

    \b
    Typical day:
      platform twin create alice
      platform twin ingest alice video.mp4 photo.jpg voice.wav
      platform run --twin-id alice --task preprocess
      platform status --twin-id alice
    """


def main() -> None:  # pragma: no cover - console script shim
    sys.exit(cli())
