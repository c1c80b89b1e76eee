"""Schema management through Alembic only: upgrade, downgrade, current revision, drift check.

The migration scripts live in the repository's `migrations/` folder (beside `alembic.ini`); the platform is
installed from a clone (`pip install -e .`), so they are found relative to this package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from twinplatform.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]


def alembic_config() -> Config:
    ini = REPO_ROOT / "alembic.ini"
    if not (REPO_ROOT / "migrations" / "env.py").is_file():
        raise ConfigError(
            f"migration scripts not found under {REPO_ROOT / 'migrations'}: install the platform from a clone "
            "with `pip install -e .` (see README)"
        )
    config = Config(str(ini)) if ini.is_file() else Config()
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Upgrade the embedded database on first use; refuse to run a server database that is behind."""
    if is_up_to_date(engine):
        return
    if auto_upgrade:
        upgrade(engine)
        return
    raise ConfigError(
        f"the database schema is at revision {current_revision(engine)!r}, the code needs {head_revision()!r}: "
        "run `platform db upgrade`"
    )
