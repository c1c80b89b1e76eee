"""Alembic environment: the platform's metadata, and its database URL from the platform's settings.

A caller may hand over an open connection in `config.attributes["connection"]` (the platform does this for
`platform db upgrade` and the embedded auto-upgrade) so the URL is never parsed twice.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from twinplatform.db import models  # noqa: F401  (registers every table on Base.metadata)
from twinplatform.db.base import Base

target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table rebuilds for ALTERs
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    from twinplatform.config import get_settings
    from twinplatform.db.session import make_engine

    engine = make_engine(get_settings().effective_database_url)
    with engine.connect() as connection:
        _configure_and_run(connection)
    engine.dispose()


def run_migrations_offline() -> None:
    from twinplatform.config import get_settings
    from twinplatform.db.session import normalise_url

    context.configure(
        url=normalise_url(get_settings().effective_database_url),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
