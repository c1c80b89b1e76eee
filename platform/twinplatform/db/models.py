"""The records the platform keeps: twins, their assets in the store, jobs, stage runs and the event log.

The database is the system of record for job state; the broker (when there is one) only carries hints.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from twinplatform.db.base import Base, UTCDateTime, utcnow
from twinplatform.domain import JobState, StageState

ACTIVE_JOB_STATES_SQL = text("state IN ('queued', 'running')")


def new_job_id() -> str:
    return uuid.uuid4().hex


class Twin(Base):
    """A person's digital twin; its id is the `{twin_id}` of every store key."""

    __tablename__ = "twins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    assets: Mapped[list[Asset]] = relationship(
        back_populates="twin", cascade="all, delete-orphan", passive_deletes=True
    )
    jobs: Mapped[list[Job]] = relationship(back_populates="twin", cascade="all, delete-orphan", passive_deletes=True)


class Asset(Base):
    """One object in the store that the platform wrote or ingested, with what is needed to verify it."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    twin_id: Mapped[str | None] = mapped_column(ForeignKey("twins.id", ondelete="CASCADE"), index=True)
    area: Mapped[str] = mapped_column(String(16))  # raw | processed | inference | common
    kind: Mapped[str] = mapped_column(String(32))  # audio | image | video | the producing stage's name
    key: Mapped[str] = mapped_column(String(1024), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))  # hex SHA-256
    original_name: Mapped[str] = mapped_column(String(255), default="")
    stage_run_id: Mapped[int | None] = mapped_column(ForeignKey("stage_runs.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    twin: Mapped[Twin | None] = relationship(back_populates="assets")


class Job(Base):
    """One request to run a (model, task) for a twin, or (task "dataset") to build the dataset `dataset` of a model
    from many twins (then `twin_id` is empty and the member twins are in `params["twins"]`). Its stages are
    `StageRun` rows."""

    __tablename__ = "jobs"
    __table_args__ = (
        # Duplicate requests for an active job return that job: at most one active job per idempotency key.
        Index(
            "uq_jobs_active_idempotency_key",
            "idempotency_key",
            unique=True,
            sqlite_where=ACTIVE_JOB_STATES_SQL,
            postgresql_where=ACTIVE_JOB_STATES_SQL,
        ),
        Index("ix_jobs_state_priority", "state", "priority"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    twin_id: Mapped[str | None] = mapped_column(ForeignKey("twins.id", ondelete="CASCADE"), index=True)
    dataset: Mapped[str | None] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    requested_gpus: Mapped[int] = mapped_column(Integer, default=0)
    executor: Mapped[str] = mapped_column(String(16), default="inline")  # inline | celery
    idempotency_key: Mapped[str] = mapped_column(String(64))
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    twin: Mapped[Twin | None] = relationship(back_populates="jobs")
    stage_runs: Mapped[list[StageRun]] = relationship(
        back_populates="job", order_by="StageRun.position", cascade="all, delete-orphan", passive_deletes=True
    )


class StageRun(Base):
    """One stage of one job. `attempt` is the fencing token: only the holder of the current attempt's lease
    may commit outputs (compare-and-set on id + attempt + state)."""

    __tablename__ = "stage_runs"
    __table_args__ = (UniqueConstraint("job_id", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=StageState.QUEUED.value, index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    resources_gpus: Mapped[int] = mapped_column(Integer, default=0)
    # The attempt whose outputs were committed (fenced, at most one); set before they are promoted from
    # scratch to their final keys, so a later attempt can finish a promotion a crash interrupted.
    commit_attempt: Mapped[int | None] = mapped_column(Integer)
    lost_count: Mapped[int] = mapped_column(Integer, default=0)  # how often its worker died mid-stage
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str] = mapped_column(String(255), default="")
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    input_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    output_manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    job: Mapped[Job] = relationship(back_populates="stage_runs")


class Outbox(Base):
    """A stage run to hand to the broker, written in the transaction that made it runnable.

    The relay sends rows whose `sent_at` is empty and `not_before` has passed, then stamps them; a crash between
    commit and send leaves the row for the next relay pass, so no dispatch is ever lost.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "not_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stage_run_id: Mapped[int] = mapped_column(ForeignKey("stage_runs.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    queue: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(32), default="")  # submitted | next | retry | lost | redispatch
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64))


class Event(Base):
    """Append-only log: one row for every state transition and every notable action."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(32))  # job.state | stage.state | twin.created | asset.ingested ...
    twin_id: Mapped[str | None] = mapped_column(String(64), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    stage_run_id: Mapped[int | None] = mapped_column(ForeignKey("stage_runs.id", ondelete="CASCADE"))
    attempt: Mapped[int | None] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
