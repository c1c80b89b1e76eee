"""celery mode: outbox, commit attempt, worker losses, job executor

Revision ID: 0002
Revises: 0001

Existing jobs are in-process jobs (executor 'inline'); existing stage runs have lost no worker.
Create Date: 2026-11-22 03:25:32.889474
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import twinplatform.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stage_run_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", twinplatform.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_before", twinplatform.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", twinplatform.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("send_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_outbox_job_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["stage_run_id"], ["stage_runs.id"], name=op.f("fk_outbox_stage_run_id_stage_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_job_id"), ["job_id"], unique=False)
        batch_op.create_index("ix_outbox_pending", ["sent_at", "not_before"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_stage_run_id"), ["stage_run_id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("executor", sa.String(length=16), nullable=False, server_default="inline"))

    with op.batch_alter_table("stage_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("commit_attempt", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lost_count", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("stage_runs", schema=None) as batch_op:
        batch_op.drop_column("lost_count")
        batch_op.drop_column("commit_attempt")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("executor")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_stage_run_id"))
        batch_op.drop_index("ix_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_outbox_job_id"))

    op.drop_table("outbox")
