"""Deleting a client keeps its ledger: deleted clients move to `deleted_clients`, ledger
entries lose their foreign key to clients (so they outlive the row), and an entry records the
validTill it replaced (a reversal takes back the access a payment granted; for earlier
payments it is taken from the client's previous access payment).

SQLite rebuilds credit_entries to drop the key. Dropping a table with rows there deletes them
first (a reversal's RESTRICT key refuses that, and note lines would cascade away), so the
entries and their lines are copied aside, the table emptied, rebuilt and refilled. SQLite
also reuses the highest rowid once that row is deleted: a trigger refuses a new client with a
deleted client's id (services/clients.py allocates ids past them).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 02:00:00
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

from db.base import BigId, Json, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = (("credit_entries", "credit_entries_kept"), ("credit_note_lines", "credit_note_lines_kept"))


def _rebuild_entries(change: Callable[[BatchOperations], None], *, added: bool) -> None:
    """Change credit_entries (with batch operations); on SQLite keep its rows and their lines."""
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        for table, kept in KEPT:
            op.execute(f"CREATE TEMP TABLE {kept} AS SELECT * FROM {table}")
        op.execute("DELETE FROM credit_entries WHERE reverses_id IS NOT NULL")
        op.execute("DELETE FROM credit_entries")  # and, by cascade, the note lines
    with op.batch_alter_table("credit_entries") as batch_op:
        change(batch_op)
    if sqlite:
        # the column added or dropped is the last one
        columns = "*, NULL" if added else ", ".join(_columns_but_last("credit_entries_kept"))
        op.execute(
            f"INSERT INTO credit_entries SELECT {columns} FROM credit_entries_kept ORDER BY id"
        )
        op.execute("INSERT INTO credit_note_lines SELECT * FROM credit_note_lines_kept")
        for _, kept in KEPT:
            op.execute(f"DROP TABLE {kept}")


def _columns_but_last(table: str) -> list[str]:
    rows = op.get_bind().exec_driver_sql(f"PRAGMA temp.table_info({table})").all()
    return [row[1] for row in rows][:-1]


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    op.create_table(
        "deleted_clients",
        sa.Column("id", BigId, autoincrement=False, nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_by_id", BigId, nullable=True),
        sa.Column("snapshot", Json, nullable=False),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"],
            ["staff_users.id"],
            name=op.f("fk_deleted_clients_deleted_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_clients")),
    )

    def change(batch_op: BatchOperations) -> None:
        batch_op.drop_constraint(op.f("fk_credit_entries_client_id_clients"), type_="foreignkey")
        batch_op.add_column(sa.Column("valid_till_before", UTCDateTime(), nullable=True))

    _rebuild_entries(change, added=True)
    # Payments made before: what validTill was is taken as the validTill the client's previous
    # access payment set (the first one's stays unknown: it is reversed from its own time).
    op.execute(
        "UPDATE credit_entries SET valid_till_before = (SELECT earlier.valid_till_set "
        "FROM credit_entries AS earlier WHERE earlier.client_id = credit_entries.client_id "
        "AND earlier.id < credit_entries.id AND earlier.valid_till_set IS NOT NULL "
        "ORDER BY earlier.id DESC LIMIT 1) WHERE valid_till_set IS NOT NULL"
    )
    if sqlite:
        op.execute(
            "CREATE TRIGGER clients_id_not_reused AFTER INSERT ON clients "
            "WHEN EXISTS (SELECT 1 FROM deleted_clients WHERE id = NEW.id) BEGIN "
            "SELECT RAISE(ABORT, 'the id of a deleted client'); END"
        )


def downgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER clients_id_not_reused")
    # Entries of deleted clients cannot point at a client again.
    gone = "client_id NOT IN (SELECT id FROM clients)"
    op.execute(
        "DELETE FROM credit_note_lines WHERE entry_id IN "
        f"(SELECT id FROM credit_entries WHERE {gone})"
    )
    op.execute(f"DELETE FROM credit_entries WHERE {gone} AND reverses_id IS NOT NULL")
    op.execute(f"DELETE FROM credit_entries WHERE {gone}")

    def change(batch_op: BatchOperations) -> None:
        batch_op.drop_column("valid_till_before")
        batch_op.create_foreign_key(
            op.f("fk_credit_entries_client_id_clients"),
            "clients",
            ["client_id"],
            ["id"],
            ondelete="CASCADE",
        )

    _rebuild_entries(change, added=False)
    op.drop_table("deleted_clients")
