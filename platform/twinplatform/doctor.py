"""Health checks behind `platform doctor`: each says what it checked, what it found and what to fix."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from twinplatform.config import Settings
from twinplatform.errors import PlatformError


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Callable[[Settings], Check]] = [
        _check_database,
        _check_store,
        _check_mirror,
        _check_ffmpeg,
        _check_broker,
        _check_gpus,
        _check_torch,
        _check_models,
    ]
    results = [Check("config", "ok", f"loaded; data folder {settings.data_dir}")]
    for check in checks:
        try:
            results.append(check(settings))
        except PlatformError as exc:
            results.append(Check(check.__name__.removeprefix("_check_"), "fail", str(exc)))
    return results


def _check_database(settings: Settings) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from twinplatform.config import mask_url
    from twinplatform.db import migrate
    from twinplatform.wiring import database_engine

    url = mask_url(settings.effective_database_url)
    engine = database_engine(settings, check_schema=False)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
    except SQLAlchemyError as exc:
        return Check(
            "database",
            "fail",
            f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            "start the database or fix PLATFORM_DATABASE_URL",
        )
    finally:
        engine.dispose()
    if current != head:
        if settings.is_embedded_database and current is None:
            return Check("database", "ok", f"{url}: new; its schema is created on first use")
        return Check("database", "fail", f"{url}: schema at {current!r}, code needs {head!r}", "platform db upgrade")
    return Check("database", "ok", f"{url}: schema at {current}")


def _check_store(settings: Settings) -> Check:
    from twinplatform.wiring import store_backend

    backend = store_backend(settings)
    backend.check_access()
    return Check("store", "ok", f"{backend.url}: reachable")


def _check_mirror(settings: Settings) -> Check:
    mirror = settings.effective_mirror_dir
    try:
        mirror.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=mirror):
            pass
    except OSError as exc:
        return Check("mirror", "fail", f"{mirror}: not writable ({exc})", "fix PLATFORM_MIRROR_DIR or its permissions")
    return Check("mirror", "ok", f"{mirror}: writable")


def _check_ffmpeg(settings: Settings) -> Check:
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        version = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=20, check=True)
    except (ImportError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return Check("ffmpeg", "fail", f"no usable ffmpeg ({exc})", "reinstall: pip install -e . (imageio-ffmpeg)")
    first = version.stdout.splitlines()[0] if version.stdout else "?"
    import av

    return Check("ffmpeg", "ok", f"{first.split(' Copyright')[0]} at {exe}; PyAV {av.__version__}")


def _check_broker(settings: Settings) -> Check:
    if not settings.broker_url:
        return Check("broker", "ok", "none configured: jobs run in-process")
    parts = urlsplit(settings.broker_url)
    host, port = (
        parts.hostname or "localhost",
        parts.port or (6379 if parts.scheme.startswith("redis") else 5672),
    )
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        return Check(
            "broker",
            "fail",
            f"{host}:{port} unreachable ({exc})",
            "start the broker or fix PLATFORM_BROKER_URL",
        )
    return Check("broker", "ok", f"{host}:{port} accepts connections")


def _check_gpus(settings: Settings) -> Check:
    from twinplatform.services.gpus import visible_gpus

    gpus = visible_gpus()
    if not gpus:
        return Check(
            "gpus",
            "warn",
            "no NVIDIA GPU visible: GPU stages need a GPU worker",
            "fine for preprocessing media; run GPU workers elsewhere (docs/deployment.md)",
        )
    return Check(
        "gpus",
        "ok",
        f"{len(gpus)} visible: {', '.join(gpus)}; CUDA_VISIBLE_DEVICES="
        f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}",
    )


def _check_torch(settings: Settings) -> Check:
    try:
        import torch
    except ImportError:
        return Check("torch", "warn", "not installed", "scripts/setup installs the right build for this machine")
    cuda = torch.cuda.is_available()
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
    return Check("torch", "ok", f"{torch.__version__} ({build}; CUDA available: {cuda})")


def _check_models(settings: Settings) -> Check:
    from pipelines.registry import PIPELINES
    from twinplatform.wiring import store_backend

    backend = store_backend(settings)
    models = sorted({model for model, _ in PIPELINES})
    found = {model: sum(1 for _ in backend.list(f"common/{model}/")) for model in models}
    detail = ", ".join(f"common/{model}/: {count} file(s)" for model, count in found.items())
    return Check("models", "ok", f"{detail}; the current pipelines need no model files")
