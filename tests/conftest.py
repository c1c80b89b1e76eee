"""Shared fixtures: databases (SQLite and a real PostgreSQL), a local store, and a ready Runtime."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from storage_layout import DEFAULT_LAYOUT
from tests.support.services import postgres_admin_url, unavailable
from twinplatform.db import migrate
from twinplatform.db.base import Base
from twinplatform.db.session import make_engine, make_sessionmaker
from twinplatform.jobs.runtime import EnginePolicy, Runtime
from twinplatform.storage.local import LocalBackend
from twinplatform.storage.mirror import MirrorCache

pytest_plugins = ["tests.support.s3_fixtures", "tests.support.cli_harness", "tests.support.cluster_fixtures"]

FAST_POLICY = EnginePolicy(
    lease_s=5.0,
    heartbeat_s=0.5,
    max_attempts=3,
    retry_backoff_s=0.05,
    retry_backoff_max_s=0.2,
    progress_write_interval_s=0.0,
)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT connection to the machine's PostgreSQL, for creating throwaway databases."""
    admin_url = postgres_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001  (any connection failure means "unreachable")
        admin.dispose()
        unavailable("PostgreSQL", f"{make_url(admin_url).render_as_string(hide_password=True)}: {exc}")
    yield admin
    admin.dispose()


@contextlib.contextmanager
def _throwaway_database(admin: Engine) -> Iterator[str]:
    name = f"twinplatform_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_database(postgres_admin: Engine) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (empty; `postgres_engine` migrates it)."""
    with _throwaway_database(postgres_admin) as url:
        yield url


@pytest.fixture
def fresh_postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """An empty PostgreSQL database of its own for one test, dropped afterwards."""
    with _throwaway_database(postgres_admin) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_engine(postgres_database: str) -> Iterator[Engine]:
    engine = make_engine(postgres_database)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The migrated database, once on SQLite and once on the real PostgreSQL (emptied after each test)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
        return
    engine: Engine = request.getfixturevalue("postgres_engine")
    _truncate(engine)
    yield engine
    _truncate(engine)


def make_runtime(engine: Engine, store_root: Path, mirror_root: Path, policy: EnginePolicy = FAST_POLICY) -> Runtime:
    store_root.mkdir(parents=True, exist_ok=True)
    backend = LocalBackend(store_root)
    mirror_root.mkdir(parents=True, exist_ok=True)
    return Runtime(
        engine=engine,
        sessions=make_sessionmaker(engine),
        backend=backend,
        mirror=MirrorCache(
            backend,
            lambda key: DEFAULT_LAYOUT.mirror_path_for_key(key, mirror_root),
            mirror_root / ".twinplatform-mirror",
        ),
        mirror_root=mirror_root,
        policy=policy,
        worker_id="test-worker",
    )


@pytest.fixture
def runtime(db_engine: Engine, tmp_path: Path) -> Runtime:
    """A Runtime on the migrated database (SQLite and PostgreSQL) with a local folder store."""
    return make_runtime(db_engine, tmp_path / "store", tmp_path / "mirror")
