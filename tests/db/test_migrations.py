"""The schema comes from Alembic migrations only, and they agree with the models on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from twinplatform.db import migrate
from twinplatform.db.base import Base
from twinplatform.db.session import make_engine


def test_models_and_migrations_agree(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_head_is_applied(db_engine: Engine) -> None:
    assert migrate.current_revision(db_engine) == migrate.head_revision()
    assert {"twins", "assets", "jobs", "stage_runs", "events"} <= set(inspect(db_engine).get_table_names())


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_postgres(postgres_database: str) -> None:
    engine = make_engine(postgres_database)
    try:
        migrate.downgrade(engine, "base")
        assert "jobs" not in inspect(engine).get_table_names()
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert "jobs" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.is_up_to_date(engine)
    engine.dispose()


def test_embedded_database_upgrades_itself_and_a_server_one_refuses(tmp_path: Path) -> None:
    from twinplatform.errors import ConfigError

    fresh = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(ConfigError, match="platform db upgrade"):
        migrate.ensure_schema(fresh, auto_upgrade=False)
    migrate.ensure_schema(fresh, auto_upgrade=True)
    assert migrate.is_up_to_date(fresh)
    fresh.dispose()
