"""Building a Runtime from Settings: the only place where configuration meets the engine, store and database."""

from __future__ import annotations

from sqlalchemy import Engine

from storage_layout import DEFAULT_LAYOUT
from twinplatform.config import Settings
from twinplatform.db import migrate
from twinplatform.db.session import make_engine, make_sessionmaker
from twinplatform.jobs.runtime import EnginePolicy, Runtime
from twinplatform.storage.base import StorageBackend
from twinplatform.storage.mirror import MirrorCache
from twinplatform.storage.registry import open_backend
from twinplatform.storage.s3 import S3Options


def database_engine(settings: Settings, *, check_schema: bool = True) -> Engine:
    """An engine for the configured database; the embedded SQLite default upgrades its schema on first use."""
    engine = make_engine(settings.effective_database_url)
    if check_schema:
        try:
            migrate.ensure_schema(engine, auto_upgrade=settings.is_embedded_database)
        except BaseException:
            engine.dispose()
            raise
    return engine


def s3_options(settings: Settings) -> S3Options:
    return S3Options(
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region or None,
        access_key_id=settings.s3_access_key_id or None,
        secret_access_key=settings.s3_secret_access_key.get_secret_value() or None,
    )


def store_backend(settings: Settings) -> StorageBackend:
    url = settings.effective_store_url
    if url.startswith("file://"):
        from pathlib import Path
        from urllib.parse import unquote, urlsplit

        Path(unquote(urlsplit(url).path)).mkdir(parents=True, exist_ok=True)
    return open_backend(url, s3_options(settings))


def engine_policy(settings: Settings) -> EnginePolicy:
    return EnginePolicy(
        lease_s=settings.lease_s,
        heartbeat_s=settings.heartbeat_s,
        max_attempts=settings.max_attempts,
        retry_backoff_s=settings.retry_backoff_s,
        retry_backoff_max_s=settings.retry_backoff_max_s,
        max_worker_losses=settings.max_worker_losses,
        redispatch_after_s=settings.redispatch_after_s,
        db_outage_tolerance_s=settings.db_outage_tolerance_s,
        detect_dead_local_holders=settings.detect_dead_local_holders,
    )


def load_pipeline_plugins(settings: Settings) -> None:
    """Import the configured 'module:function' hooks, each of which registers extra pipelines."""
    import importlib

    from twinplatform.errors import ConfigError

    for target in filter(None, (item.strip() for item in settings.pipeline_plugins.split(","))):
        module_name, _, function = target.partition(":")
        try:
            hook = getattr(importlib.import_module(module_name), function or "register")
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"pipeline plugin {target!r} cannot be loaded ({exc}): fix PLATFORM_PIPELINE_PLUGINS"
            ) from exc
        hook()


def build_runtime(settings: Settings) -> Runtime:
    load_pipeline_plugins(settings)
    engine = database_engine(settings)
    backend = store_backend(settings)
    mirror_root = settings.effective_mirror_dir
    mirror_root.mkdir(parents=True, exist_ok=True)
    layout = DEFAULT_LAYOUT
    mirror = MirrorCache(
        backend,
        lambda key: layout.mirror_path_for_key(key, mirror_root),
        mirror_root / ".twinplatform-mirror",
    )
    return Runtime(
        engine=engine,
        sessions=make_sessionmaker(engine),
        backend=backend,
        mirror=mirror,
        mirror_root=mirror_root,
        layout=layout,
        policy=engine_policy(settings),
    )
