"""`platform db upgrade|current|downgrade`: the schema is created and changed only by Alembic migrations."""

from __future__ import annotations

import click

from twinplatform.cli import context


@click.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Upgrade the database schema (the embedded SQLite default also does this by itself on first use)."""
    from twinplatform.db import migrate
    from twinplatform.wiring import database_engine

    engine = database_engine(context.settings(), check_schema=False)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine, revision)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"database at revision {after}" + ("" if before != after else " (already up to date)"))


@db.command("current")
def current() -> None:
    """Print the schema revision of the database and of the code."""
    from twinplatform.db import migrate
    from twinplatform.wiring import database_engine

    engine = database_engine(context.settings(), check_schema=False)
    try:
        click.echo(f"database: {migrate.current_revision(engine) or '(empty)'}  code: {migrate.head_revision()}")
    finally:
        engine.dispose()


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def downgrade(revision: str, yes: bool) -> None:
    """Downgrade the schema to REVISION ('base' drops every table: data is lost)."""
    from twinplatform.db import migrate
    from twinplatform.wiring import database_engine

    if not yes:
        click.confirm(f"downgrade the database to {revision}? Data in dropped tables is lost", abort=True)
    engine = database_engine(context.settings(), check_schema=False)
    try:
        migrate.downgrade(engine, revision)
        click.echo(f"database at revision {migrate.current_revision(engine) or '(empty)'}")
    finally:
        engine.dispose()
