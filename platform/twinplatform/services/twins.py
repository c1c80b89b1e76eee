"""Twin registry use cases: create, list, describe and remove twins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage_layout import InvalidTwinId, validate_twin_id
from twinplatform.db.models import Asset, Job, Twin
from twinplatform.domain import ACTIVE_JOB_STATES, JobState
from twinplatform.errors import AlreadyExists, InputError, TwinNotFound
from twinplatform.jobs import events
from twinplatform.jobs.runtime import Runtime


def checked_twin_id(value: str) -> str:
    """Validate a twin_id at the edge; the message names the value, the problem and the rule."""
    try:
        return validate_twin_id(value)
    except InvalidTwinId as exc:
        raise InputError(str(exc)) from exc


def require_twin(session: Session, twin_id: str) -> Twin:
    twin = session.get(Twin, checked_twin_id(twin_id))
    if twin is None:
        raise TwinNotFound(twin_id)
    return twin


def create_twin(sessions: sessionmaker[Session], twin_id: str, display_name: str = "") -> Twin:
    twin_id = checked_twin_id(twin_id)
    with sessions() as session, session.begin():
        if session.get(Twin, twin_id) is not None:
            raise AlreadyExists(f"twin {twin_id!r} already exists: use it, or pick another id")
        twin = Twin(id=twin_id, display_name=display_name)
        session.add(twin)
        events.record(session, "twin.created", twin_id=twin_id, message=display_name)
    return twin


def ensure_twin(sessions: sessionmaker[Session], twin_id: str) -> bool:
    """Create the twin unless it exists; True if it was created."""
    with sessions() as session:
        if session.get(Twin, checked_twin_id(twin_id)) is not None:
            return False
    create_twin(sessions, twin_id)
    return True


@dataclass(frozen=True)
class TwinSummary:
    twin_id: str
    display_name: str
    created_at: datetime
    raw_files: int
    processed_files: int
    last_job_state: str | None
    ready: bool  # the last preprocess job succeeded

    def as_json(self) -> dict[str, Any]:
        return {
            "twin_id": self.twin_id,
            "display_name": self.display_name,
            "created_at": self.created_at.isoformat(),
            "raw_files": self.raw_files,
            "processed_files": self.processed_files,
            "last_job_state": self.last_job_state,
            "ready": self.ready,
        }


def list_twins(sessions: sessionmaker[Session], *, only: str | None = None) -> list[TwinSummary]:
    """Every twin's summary, or just the twin `only` (so showing one twin does not summarise them all)."""
    with sessions() as session:
        count_query = select(Asset.twin_id, Asset.area, func.count()).group_by(Asset.twin_id, Asset.area)
        twin_query = select(Twin).order_by(Twin.id)
        if only is not None:
            count_query = count_query.where(Asset.twin_id == only)
            twin_query = twin_query.where(Twin.id == only)
        counts = {(twin_id, area): count for twin_id, area, count in session.execute(count_query)}
        summaries = []
        for twin in session.scalars(twin_query):
            last_job = _last_job(session, twin.id)
            last_preprocess = _last_job(session, twin.id, task="preprocess")
            summaries.append(
                TwinSummary(
                    twin_id=twin.id,
                    display_name=twin.display_name,
                    created_at=twin.created_at,
                    raw_files=counts.get((twin.id, "raw"), 0),
                    processed_files=counts.get((twin.id, "processed"), 0),
                    last_job_state=last_job.state if last_job else None,
                    ready=bool(last_preprocess and last_preprocess.state == JobState.SUCCEEDED.value),
                )
            )
        return summaries


def _last_job(session: Session, twin_id: str, task: str | None = None) -> Job | None:
    query = select(Job).where(Job.twin_id == twin_id)
    if task is not None:
        query = query.where(Job.task == task)
    return session.scalars(query.order_by(Job.created_at.desc()).limit(1)).first()


@dataclass(frozen=True)
class AssetView:
    key: str
    area: str
    kind: str
    size_bytes: int
    checksum: str
    local_path: Path | None  # the file on this machine, when the store is a local folder or it is mirrored

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "area": self.area,
            "kind": self.kind,
            "size_bytes": self.size_bytes,
            "sha256": self.checksum,
            "local_path": str(self.local_path) if self.local_path else None,
        }


@dataclass(frozen=True)
class TwinDetails:
    summary: TwinSummary
    assets: list[AssetView]
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {**self.summary.as_json(), "assets": [a.as_json() for a in self.assets], "jobs": self.jobs}


def local_path_resolver(runtime: Runtime) -> Callable[[str], Path | None]:
    """Where a user finds an object on this machine: the store's own file for a folder store, else the
    mirror copy when one exists."""
    url = runtime.backend.url
    if url.startswith("file://"):
        root = Path(unquote(urlsplit(url).path))
        return lambda key: root / key

    def mirrored(key: str) -> Path | None:
        path = runtime.layout.mirror_path_for_key(key, runtime.mirror_root)
        return path if path.exists() else None

    return mirrored


# Pictures a preprocess leaves for a person to look at (suffixes of processed keys), in the order they are shown.
PREVIEW_SUFFIXES = ("/face/contact_sheet.png", "/flame/preview.png")


def preview_pictures(runtime: Runtime, details: TwinDetails, *, fetch: bool) -> list[tuple[str, Path | None]]:
    """(key, local path) of the twin's preview pictures; with `fetch`, pictures only in a remote store are
    downloaded into the mirror first so a viewer can open them."""
    found: list[tuple[str, Path | None]] = []
    for suffix in PREVIEW_SUFFIXES:
        for asset in details.assets:
            if asset.area == "processed" and asset.key.endswith(suffix):
                path = asset.local_path
                if path is None and fetch:
                    path = runtime.mirror.fetch(asset.key, asset.checksum).path
                found.append((asset.key, path))
    return found


def twin_details(
    runtime: Runtime, twin_id: str, local_path_for: Callable[[str], Path | None] | None = None
) -> TwinDetails:
    """A twin's summary, every registered asset (with a local path when one exists) and its recent jobs."""
    with runtime.sessions() as session:
        require_twin(session, twin_id)
        assets = session.scalars(select(Asset).where(Asset.twin_id == twin_id).order_by(Asset.key)).all()
        jobs = session.scalars(
            select(Job).where(Job.twin_id == twin_id).order_by(Job.created_at.desc()).limit(10)
        ).all()
        job_rows = [
            {
                "job_id": j.id,
                "task": f"{j.model}/{j.task}",
                "state": j.state,
                "created_at": j.created_at.isoformat(),
                "error": j.error_message,
            }
            for j in jobs
        ]
        views = [
            AssetView(
                a.key,
                a.area,
                a.kind,
                a.size_bytes,
                a.checksum,
                local_path_for(a.key) if local_path_for else None,
            )
            for a in assets
        ]
    (summary,) = list_twins(runtime.sessions, only=twin_id)
    return TwinDetails(summary, views, job_rows)


@dataclass(frozen=True)
class RemovalReport:
    twin_id: str
    deleted_keys: list[str]
    deleted_local_paths: list[Path]
    deleted_jobs: int
    deleted_assets: int


def remove_twin(runtime: Runtime, twin_id: str, *, force: bool = False) -> RemovalReport:
    """Delete the twin's objects under every prefix it owns (store and mirror), then its rows.

    Objects go first: if deletion stops half-way, the rows still say what is left and `twin rm` can be run
    again. A twin with an active job is refused unless `force` (the job would write into a deleted twin).
    """
    twin_id = checked_twin_id(twin_id)
    with runtime.sessions() as session:
        require_twin(session, twin_id)
        active = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.twin_id == twin_id, Job.state.in_([s.value for s in ACTIVE_JOB_STATES]))
        )
        if active and not force:
            raise InputError(
                f"twin {twin_id!r} has {active} active job(s): cancel them (`platform jobs cancel JOB`) or pass --force"
            )
    deleted_keys: list[str] = []
    for prefix in runtime.layout.twin_prefixes(twin_id):
        deleted_keys.extend(runtime.backend.delete_prefix(prefix))
    deleted_paths: list[Path] = []
    for directory in runtime.layout.twin_mirror_dirs(twin_id, runtime.mirror_root):
        deleted_paths.extend(runtime.mirror.remove_tree(directory))
    with runtime.sessions() as session, session.begin():
        twin = require_twin(session, twin_id)
        jobs = session.scalar(select(func.count()).select_from(Job).where(Job.twin_id == twin_id)) or 0
        assets = session.scalar(select(func.count()).select_from(Asset).where(Asset.twin_id == twin_id)) or 0
        session.delete(twin)
        events.record(
            session,
            "twin.removed",
            twin_id=twin_id,
            message=f"removed {len(deleted_keys)} objects, {jobs} jobs, {assets} asset rows",
        )
    return RemovalReport(twin_id, sorted(deleted_keys), sorted(deleted_paths), jobs, assets)
