"""Deleted clients can be restored and are purged after a retention period: their password
hash is kept beside the snapshot, and their logins (reserved until purged) and deletion times
are indexed.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deleted_clients") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
    op.create_index("ix_deleted_clients_login", "deleted_clients", ["login"])
    op.create_index("ix_deleted_clients_deleted_at_id", "deleted_clients", ["deleted_at", "id"])


# SQLite rebuilds the table to drop a column; its trigger on clients (0009) names the table,
# so it goes while the table is rebuilt.
SQLITE_TRIGGER = (
    "CREATE TRIGGER clients_id_not_reused AFTER INSERT ON clients "
    "WHEN EXISTS (SELECT 1 FROM deleted_clients WHERE id = NEW.id) BEGIN "
    "SELECT RAISE(ABORT, 'the id of a deleted client'); END"
)


def downgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    op.drop_index("ix_deleted_clients_deleted_at_id", table_name="deleted_clients")
    op.drop_index("ix_deleted_clients_login", table_name="deleted_clients")
    if sqlite:
        op.execute("DROP TRIGGER clients_id_not_reused")
    with op.batch_alter_table("deleted_clients") as batch:
        batch.drop_column("password_hash")
    if sqlite:
        op.execute(SQLITE_TRIGGER)
