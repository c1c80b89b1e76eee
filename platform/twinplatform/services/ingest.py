"""Ingesting uploads: each file goes to raw/{twin_id}/{audio|image|video}/<name> by its detected media type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from storage_layout import LayoutError, Location
from twinplatform.db.base import utcnow
from twinplatform.db.models import Asset
from twinplatform.domain import MediaKind
from twinplatform.errors import AlreadyExists, InputError
from twinplatform.jobs import events
from twinplatform.jobs.runtime import Runtime
from twinplatform.services.media_kind import detect_media_kind
from twinplatform.services.twins import require_twin
from twinplatform.storage.checksum import sha256_file


@dataclass(frozen=True)
class Ingested:
    source: Path
    key: str
    kind: MediaKind
    size_bytes: int
    checksum: str
    action: str  # "added" | "replaced" | "unchanged"
    warning: str = ""


def ingest_files(
    runtime: Runtime,
    twin_id: str,
    paths: list[Path],
    *,
    kind: MediaKind | None = None,
    replace: bool = False,
    on_file: Callable[[Ingested], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> list[Ingested]:
    """Upload files into the twin's raw area. An existing object is never silently overwritten: the same bytes
    are reported "unchanged", different bytes need `replace=True`. All files are checked before any upload."""
    with runtime.sessions() as session:
        require_twin(session, twin_id)
    plans = [_plan(runtime, twin_id, path, kind) for path in paths]
    results: list[Ingested] = []
    for path, key, detected_kind, warning in plans:
        checksum = sha256_file(path)
        existing = runtime.backend.head(key)
        if existing is not None and existing.checksum == checksum:
            action = "unchanged"
        elif existing is not None and not replace:
            raise AlreadyExists(
                f"{key} already exists with different content: pass --replace to overwrite it, "
                "or rename the file to keep both"
            )
        else:
            action = "replaced" if existing is not None else "added"
            runtime.backend.put_file(path, key, overwrite=True, progress=on_bytes)
        size = path.stat().st_size
        with runtime.sessions() as session, session.begin():
            asset = session.scalars(select(Asset).where(Asset.key == key)).first()
            if asset is None:
                asset = Asset(key=key, twin_id=twin_id, area="raw", kind=detected_kind.value)
                session.add(asset)
            asset.kind = detected_kind.value
            asset.size_bytes = size
            asset.checksum = checksum
            asset.original_name = path.name
            if action != "unchanged":
                asset.updated_at = utcnow()
            events.record(
                session,
                "asset.ingested",
                twin_id=twin_id,
                message=f"{action} {key}",
                data={"key": key, "sha256": checksum, "size_bytes": size, "warning": warning or None},
            )
        result = Ingested(path, key, detected_kind, size, checksum, action, warning)
        results.append(result)
        if on_file is not None:
            on_file(result)
    return results


def _plan(runtime: Runtime, twin_id: str, path: Path, kind: MediaKind | None) -> tuple[Path, str, MediaKind, str]:
    if not path.is_file():
        raise InputError(f"{path} is not a file: give the path of an audio, image or video file")
    warning = ""
    if kind is None:
        detection = detect_media_kind(path)
        kind = detection.kind
        if not detection.by_content:
            warning = (
                f"{path.name}: {detection.note}; stored as {kind.value} by its extension, and preprocessing "
                "will report the problem"
            )
    try:
        key = runtime.layout.key(Location.raw(twin_id, f"{kind.value}/{path.name}"))
    except LayoutError as exc:
        raise InputError(f"file name {path.name!r} cannot be used as a key ({exc}): rename the file") from exc
    return path, key, kind, warning
