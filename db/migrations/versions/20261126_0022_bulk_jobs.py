"""Bulk jobs: a bulk action on a selection too large for one request, worked through by the
job workers in chunks (bulk_jobs, bulk_job_items). The job queue's own tables (procrastinate's,
on PostgreSQL) follow the installed version: db/migrate.py `queue_schema`.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTCDateTime = sa.DateTime(timezone=True)
STATUSES = ("QUEUED", "RUNNING", "FINISHED", "CANCELLED", "FAILED")
STATES = ("PENDING", "CHANGED", "UNCHANGED", "REFUSED")


def _check(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "bulk_jobs",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "created_by_id",
            BigId,
            sa.ForeignKey("staff_users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("action", Json, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="status", native_enum=False, create_constraint=True),
            server_default="QUEUED",
            nullable=False,
        ),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("refused", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column(
            "cancelled_by_id",
            BigId,
            sa.ForeignKey("staff_users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("failure", sa.String(500), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_bulk_jobs_created_by_id_id", "bulk_jobs", ["created_by_id", "id"])
    op.create_index("ix_bulk_jobs_status_id", "bulk_jobs", ["status", "id"])
    op.create_table(
        "bulk_job_items",
        sa.Column(
            "job_id",
            BigId,
            sa.ForeignKey("bulk_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rank", sa.SmallInteger(), primary_key=True),
        sa.Column("client_id", BigId, primary_key=True, autoincrement=False),
        sa.Column(
            "state",
            sa.Enum(*STATES, name="state", native_enum=False, create_constraint=True),
            server_default="PENDING",
            nullable=False,
        ),
        sa.Column("code", sa.String(40), nullable=True),
        sa.Column("message", sa.String(500), nullable=True),
    )
    op.create_index(
        "ix_bulk_job_items_job_id_state_rank_client_id",
        "bulk_job_items",
        ["job_id", "state", "rank", "client_id"],
    )


def downgrade() -> None:
    op.drop_table("bulk_job_items")
    op.drop_table("bulk_jobs")
