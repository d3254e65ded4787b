"""Indexes for the clients list: NULLS LAST descending sorts and trigram substring search.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 08:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NULLABLE_SORT_COLUMNS = ("name", "email", "country", "last_activity_at", "valid_till")
SEARCHED_COLUMNS = ("login", "name", "email", "phone")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite sorts NULLs first natively and has no trigram indexes
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in NULLABLE_SORT_COLUMNS:
        op.execute(
            f"CREATE INDEX ix_clients_{column}_desc_id"
            f" ON clients ({column} DESC NULLS LAST, id DESC)"
        )
    for column in SEARCHED_COLUMNS:
        op.execute(
            f"CREATE INDEX ix_clients_{column}_trgm ON clients USING gin ({column} gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for column in SEARCHED_COLUMNS:
        op.execute(f"DROP INDEX ix_clients_{column}_trgm")
    for column in NULLABLE_SORT_COLUMNS:
        op.execute(f"DROP INDEX ix_clients_{column}_desc_id")
