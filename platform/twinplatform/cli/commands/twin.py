"""`platform twin create|ingest|ls|show|rm`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click

from twinplatform.cli import context
from twinplatform.cli.output import echo_json, short, state_text, table

#: uploads smaller than this finish too fast for a bar to help
PROGRESS_BAR_MIN_BYTES = 32 * 1024 * 1024


@click.group()
def twin() -> None:
    """Create, ingest into, list, show and remove twins."""


@twin.command("create")
@click.argument("twin_id")
@click.option("--name", "display_name", default="", help="A human-readable name.")
def create(twin_id: str, display_name: str) -> None:
    """Register a new twin. TWIN_ID: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    from twinplatform.services.twins import create_twin

    created = create_twin(context.runtime().sessions, twin_id, display_name)
    click.echo(f"created twin {created.id}")


@twin.command("ingest")
@click.argument("twin_id")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["audio", "image", "video"]), help="Force the media kind (skips detection).")
@click.option("--replace", is_flag=True, help="Overwrite an existing object with different content.")
@click.option("--create", "create_missing", is_flag=True, help="Create the twin first if it does not exist.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def ingest(
    twin_id: str,
    files: tuple[Path, ...],
    kind: str | None,
    replace: bool,
    create_missing: bool,
    as_json: bool,
) -> None:
    """Upload FILES to raw/TWIN_ID/{audio|image|video}/ by their detected media type."""
    from twinplatform.domain import MediaKind
    from twinplatform.services.ingest import Ingested, ingest_files
    from twinplatform.services.twins import ensure_twin

    runtime = context.runtime()
    if create_missing and ensure_twin(runtime.sessions, twin_id):
        click.echo(f"created twin {twin_id}")

    def show(item: Ingested) -> None:
        if not as_json:
            click.echo(f"{item.action:<9} {item.key}  ({item.size_bytes} bytes, sha256 {item.checksum[:12]})")
            if item.warning:
                click.secho(f"warning: {item.warning}", fg="yellow", err=True)

    total_bytes = sum(path.stat().st_size for path in files)
    show_bar = not as_json and sys.stdout.isatty() and total_bytes >= PROGRESS_BAR_MIN_BYTES
    with click.progressbar(length=total_bytes, label="uploading", hidden=not show_bar) as bar:
        results = ingest_files(
            runtime,
            twin_id,
            list(files),
            kind=MediaKind(kind) if kind else None,
            replace=replace,
            on_file=show,
            on_bytes=bar.update,
        )
    if as_json:
        echo_json(
            [
                {
                    "source": str(r.source),
                    "key": r.key,
                    "kind": r.kind.value,
                    "size_bytes": r.size_bytes,
                    "sha256": r.checksum,
                    "action": r.action,
                    "warning": r.warning or None,
                }
                for r in results
            ]
        )


@twin.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (see docs/cli.md for the schema).")
def list_command(as_json: bool) -> None:
    """List twins with their file counts and whether preprocessing succeeded."""
    from twinplatform.services.twins import list_twins

    twins = list_twins(context.runtime().sessions)
    if as_json:
        echo_json([t.as_json() for t in twins])
        return
    if not twins:
        click.echo("no twins yet: `platform twin create TWIN_ID`")
        return
    table(
        ["TWIN", "NAME", "RAW", "PROCESSED", "LAST JOB", "READY", "CREATED"],
        [
            [
                t.twin_id,
                t.display_name,
                t.raw_files,
                t.processed_files,
                state_text(t.last_job_state or "-"),
                "yes" if t.ready else "no",
                t.created_at.isoformat(timespec="seconds"),
            ]
            for t in twins
        ],
    )


@twin.command("show")
@click.argument("twin_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (see docs/cli.md for the schema).")
@click.option("--open", "open_files", is_flag=True, help="Open the twin's preview pictures with the desktop viewer.")
def show(twin_id: str, as_json: bool, open_files: bool) -> None:
    """Show a twin: its files in the store (with local paths) and its recent jobs."""
    from twinplatform.services.twins import local_path_resolver, preview_pictures, twin_details

    runtime = context.runtime()
    details = twin_details(runtime, twin_id, local_path_for=local_path_resolver(runtime))
    pictures = preview_pictures(runtime, details, fetch=open_files)
    if as_json:
        listed = [{"key": key, "local_path": str(path) if path else None} for key, path in pictures]
        echo_json(details.as_json() | {"pictures": listed})
        return
    summary = details.summary
    click.echo(f"twin {summary.twin_id}" + (f" ({summary.display_name})" if summary.display_name else ""))
    click.echo(
        f"  created {summary.created_at.isoformat(timespec='seconds')}, ready: {'yes' if summary.ready else 'no'}"
    )
    click.echo("files:")
    if not details.assets:
        click.echo("  none: `platform twin ingest TWIN FILE...`")
    for asset in details.assets:
        where = f"  -> {asset.local_path}" if asset.local_path else ""
        click.echo(f"  {asset.key}  {asset.size_bytes} B{where}")
    click.echo("jobs:")
    for job in details.jobs:
        click.echo(f"  {job['job_id'][:12]}  {job['task']:<16} {state_text(job['state'])}  {short(job['error'], 60)}")
    click.echo("pictures:")
    if not pictures:
        click.echo("  none yet: `platform run --twin-id TWIN --task preprocess` draws them")
    for key, path in pictures:
        click.echo(f"  {key}" + (f"  -> {path}" if path else "  (not on this machine: --open fetches it)"))
    if open_files and pictures:
        _open_pictures([path for _, path in pictures if path is not None])


def _open_pictures(paths: list[Path]) -> None:
    """Hand the pictures to the desktop's viewer; on a machine without one, say so (the paths are printed above)."""
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    if shutil.which(opener) is None:
        click.echo(f"no picture viewer here ({opener} not found): open the paths above on a machine with a screen")
        return
    for path in paths:
        click.echo(f"opening {path}")
        subprocess.run([opener, str(path)], check=False)


@twin.command("rm")
@click.argument("twin_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Remove even if the twin has active jobs.")
def remove(twin_id: str, yes: bool, force: bool) -> None:
    """Delete a twin: its rows and every object under its prefixes in the store and the mirror."""
    from twinplatform.services.twins import checked_twin_id, remove_twin

    twin_id = checked_twin_id(twin_id)
    runtime = context.runtime()
    prefixes = ", ".join(runtime.layout.twin_prefixes(twin_id))
    if not yes:
        click.confirm(f"delete twin {twin_id} and every object under {prefixes}?", abort=True)
    report = remove_twin(runtime, twin_id, force=force)
    for key in report.deleted_keys:
        click.echo(f"deleted {key}")
    click.echo(
        f"removed twin {twin_id}: {len(report.deleted_keys)} objects, {len(report.deleted_local_paths)} mirror "
        f"files, {report.deleted_jobs} jobs, {report.deleted_assets} asset records"
    )
