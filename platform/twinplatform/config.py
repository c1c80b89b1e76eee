"""The one Settings class: where the database, the store, the mirror and the broker are.

Sources, highest first: environment variables (`PLATFORM_*`, AWS credentials the usual boto3 way), then an
optional TOML file (`PLATFORM_CONFIG_FILE`, default `<user config dir>/twinplatform/config.toml`), then defaults.
With nothing set, everything lives under one per-user data folder (`PLATFORM_DATA_DIR`): a SQLite file, a local
folder store and a mirror folder, with jobs executed in-process. Read it only through `get_settings()`, and pass
values down explicitly: nothing below the CLI and the worker reads the environment.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from twinplatform.errors import ConfigError

APP_NAME = "twinplatform"


def default_config_file() -> Path:
    return Path(os.environ.get("PLATFORM_CONFIG_FILE") or platformdirs.user_config_path(APP_NAME) / "config.toml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLATFORM_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path(APP_NAME),
        description="per-user folder holding the embedded defaults (database, store, mirror)",
    )
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite at <data_dir>/platform.db")
    store_url: str = Field("", description="file:///abs/dir or s3://bucket[/prefix]; empty means <data_dir>/store")
    s3_endpoint_url: str = Field("", description="S3-compatible endpoint (MinIO, Ceph...); empty means AWS")
    s3_region: str = Field("", description="S3 region; empty lets boto3 decide (AWS_DEFAULT_REGION...)")
    s3_access_key_id: str = Field("", description="empty means boto3's usual credential chain")
    s3_secret_access_key: SecretStr = Field(SecretStr(""), description="empty means boto3's credential chain")
    mirror_dir: Path | None = Field(None, description="worker-local mirror of the store; default <data_dir>/mirror")
    broker_url: str = Field("", description="Celery broker (redis://, amqp://); empty means in-process execution")
    lease_s: float = Field(30.0, gt=0, description="a running stage's lease; renewed by heartbeat")
    heartbeat_s: float = Field(5.0, gt=0, description="how often a running stage renews its lease")
    max_attempts: int = Field(3, ge=1, description="attempts per stage for transient failures")
    retry_backoff_s: float = Field(2.0, ge=0, description="first retry delay; doubles per attempt")
    retry_backoff_max_s: float = Field(300.0, ge=0)
    max_worker_losses: int = Field(3, ge=1, description="a stage whose worker died this often is failed")
    max_stage_s: float = Field(6 * 3600.0, gt=0, description="hard time limit of one stage (Celery)")
    reaper_interval_s: float = Field(5.0, gt=0, description="how often workers' reapers look for lost stages")
    redispatch_after_s: float = Field(
        60.0, gt=0, description="re-send a queued stage whose message may have been lost after this long (doubling)"
    )
    db_outage_tolerance_s: float = Field(
        120.0, ge=0, description="how long a running stage waits out an unreachable database before giving up"
    )
    detect_dead_local_holders: bool = Field(
        True, description="take a stage over at once when its lease holder is a dead process on this host"
    )
    pipeline_plugins: str = Field(
        "", description="comma-separated 'module:function' hooks that register extra pipelines at start-up"
    )
    engine: str = Field(
        "auto",
        description="inference engine when a run names none: auto (neural when its checkpoints are in the store, "
        "else classical), neural or classical",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=default_config_file())
        return (init_settings, env_settings, toml)

    @field_validator("heartbeat_s")
    @classmethod
    def _heartbeat_below_lease(cls, value: float, info: Any) -> float:
        lease = info.data.get("lease_s", 60.0)
        if value >= lease:
            raise ValueError(f"heartbeat_s ({value}) must be shorter than lease_s ({lease})")
        return value

    # -- effective values -------------------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'platform.db'}"

    @property
    def effective_store_url(self) -> str:
        return self.store_url or (self.data_dir / "store").resolve().as_uri()

    @property
    def effective_mirror_dir(self) -> Path:
        return self.mirror_dir or self.data_dir / "mirror"

    @property
    def is_embedded_database(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def masked(self) -> dict[str, str]:
        """The effective configuration for display, with every secret replaced by '***'."""
        return {
            "config_file": f"{default_config_file()}" + ("" if default_config_file().exists() else " (absent)"),
            "data_dir": str(self.data_dir),
            "database_url": mask_url(self.effective_database_url),
            "store_url": mask_url(self.effective_store_url),
            "s3_endpoint_url": self.s3_endpoint_url or "(AWS default)",
            "s3_region": self.s3_region or "(boto3 default)",
            "s3_access_key_id": self.s3_access_key_id or "(boto3 credential chain)",
            "s3_secret_access_key": "***" if self.s3_secret_access_key.get_secret_value() else "(boto3 chain)",
            "mirror_dir": str(self.effective_mirror_dir),
            "broker_url": mask_url(self.broker_url) if self.broker_url else "(none: in-process execution)",
            "lease_s": str(self.lease_s),
            "heartbeat_s": str(self.heartbeat_s),
            "max_attempts": str(self.max_attempts),
            "max_worker_losses": str(self.max_worker_losses),
            "max_stage_s": str(self.max_stage_s),
            "reaper_interval_s": str(self.reaper_interval_s),
            "pipeline_plugins": self.pipeline_plugins or "(none)",
        }


def mask_url(url: str) -> str:
    """Replace the password in a URL (postgresql://u:pw@h/db -> postgresql://u:***@h/db)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The validated settings, read once per process; a bad value raises ConfigError naming it."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PLATFORM_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}. Fix the environment or {default_config_file()}") from exc
