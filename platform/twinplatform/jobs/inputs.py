"""Resolving a stage's declared inputs to store keys and checksums.

Rule for RAW inputs (documented in docs/storage.md): when several files of one kind were ingested for a twin,
the most recently ingested one is used; ties (same instant) go to the last key in sort order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.base import InputSpec, Source, Stage
from storage_layout import Layout, Location
from twinplatform.db.models import Asset
from twinplatform.errors import InputError
from twinplatform.storage.base import StorageBackend


class JobRef(Protocol):
    """What input resolution needs to know of a job (a Claim carries it)."""

    @property
    def job_id(self) -> str: ...

    @property
    def twin_id(self) -> str | None: ...

    @property
    def model(self) -> str: ...

    @property
    def params(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ResolvedInput:
    """One input's object. `checksum` is its SHA-256, or None for an object another tool put in the store
    without one (e.g. a checkpoint copied with `aws s3 cp`); `version` then stands in for it in fingerprints."""

    name: str
    key: str
    checksum: str | None
    unrecorded_version: str = ""

    @property
    def version(self) -> str:
        """What identifies these bytes for skipping work: the checksum, else size and modification time."""
        return self.checksum or self.unrecorded_version


def resolve_inputs(
    session: Session, job: JobRef, stage: Stage, *, output_area: str, layout: Layout, backend: StorageBackend
) -> dict[str, ResolvedInput]:
    """Map each available input name to its key and checksum; absent optional inputs are left out.

    A RAW input whose kind was never ingested is also left out: the stage's `applies` decides whether that
    means "skip" (e.g. no audio) or the pipeline's own check fails the job.
    """
    resolved: dict[str, ResolvedInput] = {}
    for spec in stage.inputs:
        if spec.source is Source.MEMBER:
            resolved.update(_resolve_members(session, job, spec, layout=layout, backend=backend))
            continue
        found = _resolve_one(session, job, spec, output_area=output_area, layout=layout, backend=backend)
        if found is not None:
            resolved[spec.name] = found
        elif not spec.optional and spec.source is not Source.RAW:
            raise InputError(
                f"stage {stage.name!r} of job {job.job_id} needs input {spec.name!r} "
                f"({spec.source.value} {spec.relative or spec.kind}), which is not in the store: "
                "run the task that produces it first"
            )
    return resolved


def _resolve_members(
    session: Session, job: JobRef, spec: InputSpec, *, layout: Layout, backend: StorageBackend
) -> dict[str, ResolvedInput]:
    """A MEMBER input of a dataset job: the file `spec.relative` of each member twin's preprocess of this model,
    named "{twin}/{spec.name}". A member without the file is left out (the dataset stage reports that twin)."""
    found: dict[str, ResolvedInput] = {}
    for twin in job.params.get("twins") or ():
        key = layout.key(Location.processed(str(twin), job.model, _relative(spec)))
        item = _registered_or_stored(session, f"{twin}/{spec.name}", key, backend)
        if item is not None:
            found[item.name] = item
    return found


def _resolve_one(
    session: Session, job: JobRef, spec: InputSpec, *, output_area: str, layout: Layout, backend: StorageBackend
) -> ResolvedInput | None:
    if spec.source is Source.RAW:
        asset = session.scalars(
            select(Asset)
            .where(Asset.twin_id == job.twin_id, Asset.area == "raw", Asset.kind == spec.kind)
            .order_by(Asset.updated_at.desc(), Asset.key.desc())
        ).first()
        return None if asset is None else ResolvedInput(spec.name, asset.key, asset.checksum)
    if spec.source is Source.PROCESSED:
        key = layout.key(Location.processed(_twin(job), job.model, _relative(spec)))
        return _registered_or_stored(session, spec.name, key, backend)
    if spec.source is Source.COMMON:
        key = layout.key(Location.common(job.model, _relative(spec)))
        return _registered_or_stored(session, spec.name, key, backend)
    if spec.source is Source.OUTPUT:
        key = layout.key(output_location(job, output_area, _relative(spec)))
        return _registered_or_stored(session, spec.name, key, backend)
    if spec.source is Source.REQUEST:
        requested: str | None = (job.params.get("inputs") or {}).get(spec.name)
        return None if requested is None else _registered_or_stored(session, spec.name, requested, backend)
    raise AssertionError(f"unhandled input source {spec.source!r}")


def output_location(job: JobRef, output_area: str, relative: str) -> Location:
    """Where this job's output `relative` lives: processed/{twin}/preprocessed/{model}/...; for inference,
    inference/{twin}/{model}/{run}/... with the run named in the params (default: the job id); for a dataset job,
    datasets/{model}/{name}/... with the name in the params."""
    if output_area == "processed":
        return Location.processed(_twin(job), job.model, relative)
    if output_area == "inference":
        return Location.inference(_twin(job), job.model, str(job.params.get("run") or job.job_id), relative)
    if output_area == "datasets":
        return Location.dataset(job.model, str(job.params.get("dataset") or ""), relative)
    raise AssertionError(f"unknown output area {output_area!r}")


def _twin(job: JobRef) -> str:
    if job.twin_id is None:
        raise AssertionError(f"job {job.job_id} serves no twin, so it has no twin inputs or outputs")
    return job.twin_id


def _relative(spec: InputSpec) -> str:
    if not spec.relative:
        raise AssertionError(f"input {spec.name!r} of source {spec.source.value} declares no relative name")
    return spec.relative


def _registered_or_stored(session: Session, name: str, key: str, backend: StorageBackend) -> ResolvedInput | None:
    asset = session.scalars(select(Asset).where(Asset.key == key)).first()
    if asset is not None:
        return ResolvedInput(name, key, asset.checksum)
    # Files placed in the store by other tools (e.g. checkpoints copied with `aws s3 cp`) have no asset row.
    info = backend.head(key)
    if info is None:
        return None
    if info.checksum:
        return ResolvedInput(name, key, info.checksum)
    modified = info.modified_at.isoformat() if info.modified_at else "unknown"
    return ResolvedInput(name, key, None, unrecorded_version=f"unrecorded:size={info.size_bytes}:modified={modified}")
