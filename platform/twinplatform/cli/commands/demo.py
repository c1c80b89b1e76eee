"""`platform demo`: the newcomer's first command — a demo twin made offline, preprocessed, then made to speak."""

from __future__ import annotations

import click

from twinplatform.cli import context


@click.command()
@click.option("--twin-id", default="demo", show_default=True, help="The demo twin's id.")
@click.pass_context
def demo(ctx: click.Context, twin_id: str) -> None:
    """Make a demo twin from a real face photo that ships inside an installed wheel (a short clip of it moving, and
    a portrait), preprocess it, make it say a sentence that ships with the platform (inference; the classical engine
    when no neural checkpoints are in the store), and print the MP4's path and its lip-sync score. Safe to run
    again: preprocess is not redone."""
    from pipelines.media.synthetic import DEMO_SPEECH, make_demo_media
    from twinplatform.cli.commands.run import run
    from twinplatform.cli.commands.twin import ingest
    from twinplatform.services.jobs import get_job, list_jobs

    settings = context.settings()
    media = make_demo_media(settings.data_dir / "demo-media")
    click.echo(f"demo media in {media.video.parent}")
    ctx.invoke(
        ingest,
        twin_id=twin_id,
        files=(media.video, media.image),
        kind=None,
        replace=False,
        create_missing=True,
        as_json=False,
    )
    ctx.invoke(run, twin_id=twin_id, task="preprocess", model="th", raw_params=(), as_json=False)
    click.echo("")
    ctx.invoke(run, twin_id=twin_id, task="inference", model="th", raw_params=(), audio=str(DEMO_SPEECH), as_json=False)

    runtime = context.runtime()
    latest = list_jobs(runtime.sessions, twin_id=twin_id, limit=1)[0]
    job = get_job(runtime.sessions, latest.job_id)
    from twinplatform.services.twins import local_path_resolver

    resolve = local_path_resolver(runtime)
    video = next((key for stage in job.stages for key in stage.outputs if key.endswith("/video.mp4")), None)
    score = next((stage.metrics for stage in job.stages if stage.stage == "lipsync"), {})
    click.echo("")
    if video:
        click.echo(f"the twin speaks: {resolve(video) or video}")
    if score:
        flag = "  (flagged: see `platform status`)" if score.get("flagged") else ""
        click.echo(
            f"lip-sync score: correlation {score.get('correlation')} at offset {score.get('offset_frames')} frame(s), "
            f"{score.get('silent_closed_share')} of silent frames closed{flag}"
        )
    click.echo(f"\nnext: `platform status --twin-id {twin_id}`, `platform twin show {twin_id} --open`")
