"""dataset jobs: a job may build a dataset from many twins instead of serving one twin

Revision ID: 0003
Revises: 0002

`jobs.twin_id` becomes nullable (a dataset job belongs to no single twin) and `jobs.dataset` names the dataset a
job builds. Existing jobs are twin jobs and keep their twin.
Create Date: 2026-12-07 11:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dataset", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_dataset"), ["dataset"], unique=False)
        batch_op.alter_column("twin_id", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    # NOTE: dataset jobs have no twin; they cannot survive a schema whose jobs all need one.
    op.execute("DELETE FROM jobs WHERE twin_id IS NULL")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("twin_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index(batch_op.f("ix_jobs_dataset"))
        batch_op.drop_column("dataset")
