"""`platform demo`: the newcomer's first command — a demo twin from generated media, preprocessed end to end."""

from __future__ import annotations

import click

from twinplatform.cli import context


@click.command()
@click.option("--twin-id", default="demo", show_default=True, help="The demo twin's id.")
@click.pass_context
def demo(ctx: click.Context, twin_id: str) -> None:
    """Generate a short video, a voice track and a photo offline, ingest them into a demo twin, run
    preprocess, and print where the outputs are. Safe to run again: nothing is redone."""
    from pipelines.media.synthetic import make_demo_media
    from twinplatform.cli.commands.run import run
    from twinplatform.cli.commands.twin import ingest

    settings = context.settings()
    media = make_demo_media(settings.data_dir / "demo-media")
    click.echo(f"demo media in {media.video.parent}")
    ctx.invoke(
        ingest,
        twin_id=twin_id,
        files=(media.video, media.audio, media.image),
        kind=None,
        replace=False,
        create_missing=True,
        as_json=False,
    )
    ctx.invoke(
        run,
        twin_id=twin_id,
        task="preprocess",
        model="th",
        n_gpus=0,
        priority=0,
        raw_params=(),
        as_json=False,
    )
    click.echo(f"\nnext: `platform status --twin-id {twin_id}`, `platform twin show {twin_id}`")
