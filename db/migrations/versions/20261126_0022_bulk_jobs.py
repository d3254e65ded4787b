"""Bulk jobs: a bulk action on a selection too large for one request, worked through by the
job workers in chunks (bulk_jobs, bulk_job_items); on PostgreSQL, the job queue's own tables
and functions (procrastinate's schema, as the pinned version ships it).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql
from sqlalchemy.util import await_only

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
    if op.get_context().dialect.name == "postgresql":
        # procrastinate's schema is many statements (functions with bodies), which a prepared
        # statement cannot hold: sent as one simple query on the migration's connection
        driver = op.get_bind().connection.dbapi_connection
        assert driver is not None
        await_only(driver.driver_connection.execute(SchemaManager.get_schema()))


PROCRASTINATE_DROP = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$ DECLARE f record; BEGIN
    FOR f IN SELECT oid::regprocedure AS sig FROM pg_proc
        WHERE proname LIKE 'procrastinate%' AND pronamespace = 'public'::regnamespace
    LOOP EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE'; END LOOP;
END $$;
DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
    procrastinate_job_to_defer_v1 CASCADE;
"""


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        driver = op.get_bind().connection.dbapi_connection
        assert driver is not None
        await_only(driver.driver_connection.execute(PROCRASTINATE_DROP))
    op.drop_table("bulk_job_items")
    op.drop_table("bulk_jobs")
