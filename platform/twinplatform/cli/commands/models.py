"""`platform models verify`: check model files before a run."""

from __future__ import annotations

from pathlib import Path

import click

from twinplatform.cli import context, exit_codes
from twinplatform.cli.output import echo_json


@click.group()
def models() -> None:
    """Check model files (checkpoints, FLAME) before a run."""


@models.command("verify")
@click.option("--model", default="th", show_default=True, help="The model whose files these are.")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def verify(model: str, files: tuple[Path, ...], as_json: bool) -> None:
    """Load each FILE strictly (none given: every file under common/MODEL/checkpoints/, flame/ and face_alignment/
    in the store) and print the layout it matches, its parameter count, and any missing, unexpected or mis-shaped
    keys. Exit code 5 when any file does not match; 8 when the store holds no model file."""
    from twinplatform.services.models import verify_files

    runtime = None if files else context.runtime()
    checked = verify_files(runtime, model, list(files))
    if as_json:
        echo_json([item.as_json() for item in checked])
    else:
        for item in checked:
            report = item.report
            mark = click.style("ok  ", fg="green") if report.ok else click.style("FAIL", fg="red")
            click.echo(f"[{mark}] {item.source}")
            if report.error:
                click.echo(f"       cannot read: {report.error}")
            for part in report.parts:
                name = "" if part.part == "file" else f"{part.part}: "
                click.echo(f"       {name}{part.layout or 'unknown layout'}, {part.parameters:,} parameters")
                for key in part.missing[:20]:
                    click.echo(f"         missing     {key}")
                for key in part.unexpected[:20]:
                    click.echo(f"         unexpected  {key}")
                for key, found, expected in part.mismatched[:20]:
                    click.echo(f"         mis-shaped  {key}: file {list(found)}, expected {list(expected)}")
                hidden = max(0, len(part.missing) - 20) + max(0, len(part.unexpected) - 20)
                hidden += max(0, len(part.mismatched) - 20)
                if hidden:
                    click.echo(f"         ... and {hidden} more (--json lists all)")
                if part.error:
                    click.echo(f"         {part.error}")
            if report.ignored:
                click.echo(f"       not used for inference: {', '.join(report.ignored)}")
    if not all(item.report.ok for item in checked):
        raise SystemExit(exit_codes.BAD_INPUT)
