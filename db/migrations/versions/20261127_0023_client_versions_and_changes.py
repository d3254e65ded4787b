"""Client versions and the change feed: `clients.version` counts every change of a client
(optimistic concurrency: `expectedVersion`), and `client_changes` holds one row per client
ever made — its latest change's position, version and whether it is deleted (a tombstone) —
for `clientChanges`, the incremental sync. Both kept by triggers, so no write path can miss
them.

A position orders changes as they commit: on PostgreSQL it is the writing transaction's id
plus `client_change_base.base` (raised by `clientdesk migrate` when the database was restored
into a cluster whose transaction ids are lower: db/migrate.py `keep_change_positions`), and a
reader only reads positions below the oldest transaction still writing (db/queries.py
`settled_position`); on SQLite, whose writers take turns, it is one more than the highest so
far.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.base import BigId, UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _upsert(client: str, position: str, version: str, deleted: str, at: str) -> str:
    """The statement that records a client's latest change (both dialects)."""
    return (
        "INSERT INTO client_changes (client_id, position, version, deleted, changed_at) "
        f"VALUES ({client}, {position}, {version}, {deleted}, {at}) "
        "ON CONFLICT (client_id) DO UPDATE SET position = excluded.position, "
        "version = excluded.version, deleted = excluded.deleted, changed_at = excluded.changed_at;"
    )


# the writing transaction's id, past every position recorded (client_change_base)
_POSTGRESQL_POSITION = "pg_current_xact_id()::text::bigint + (SELECT base FROM client_change_base)"
POSTGRESQL = [
    f"""
    CREATE FUNCTION clients_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        NEW.version := OLD.version + 1;
      ELSE  -- a restored client goes on from its tombstone's version
        NEW.version := coalesce(
          (SELECT version + 1 FROM client_changes WHERE client_id = NEW.id), 1);
      END IF;
      {_upsert("NEW.id", _POSTGRESQL_POSITION, "NEW.version", "false", "NEW.updated_at")}
      RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER clients_change BEFORE INSERT OR UPDATE ON clients "
    "FOR EACH ROW EXECUTE FUNCTION clients_change()",
    f"""
    CREATE FUNCTION clients_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {_upsert("OLD.id", _POSTGRESQL_POSITION, "OLD.version + 1", "true", "now()")}
      RETURN OLD;
    END $$
    """,
    "CREATE TRIGGER clients_tombstone AFTER DELETE ON clients "
    "FOR EACH ROW EXECUTE FUNCTION clients_tombstone()",
]

_SQLITE_NEXT = "(SELECT coalesce(max(position), 0) + 1 FROM client_changes)"


def _sqlite_upsert(client: str, version: str, deleted: str, at: str) -> str:
    return _upsert(client, _SQLITE_NEXT, version, deleted, at)


SQLITE = [
    # a restored client goes on from its tombstone's version (> 1: the update trigger below
    # does not take it for a change of its own)
    "CREATE TRIGGER clients_change_insert AFTER INSERT ON clients BEGIN "
    "UPDATE clients SET version = (SELECT version + 1 FROM client_changes "
    "WHERE client_id = NEW.id) "
    "WHERE id = NEW.id AND EXISTS (SELECT 1 FROM client_changes WHERE client_id = NEW.id); "
    + _sqlite_upsert(
        "NEW.id", "(SELECT version FROM clients WHERE id = NEW.id)", "0", "NEW.updated_at"
    )
    + " END",
    "CREATE TRIGGER clients_change_update AFTER UPDATE ON clients "
    "WHEN NEW.version = OLD.version BEGIN "
    "UPDATE clients SET version = OLD.version + 1 WHERE id = NEW.id; "
    + _sqlite_upsert("NEW.id", "OLD.version + 1", "0", "NEW.updated_at")
    + " END",
    "CREATE TRIGGER clients_tombstone AFTER DELETE ON clients BEGIN "
    + _sqlite_upsert("OLD.id", "OLD.version + 1", "1", "strftime('%Y-%m-%d %H:%M:%f', 'now')")
    + " END",
]


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.add_column(
        "clients", sa.Column("version", BigId, server_default=sa.text("1"), nullable=False)
    )
    op.create_table(
        "client_changes",
        sa.Column("client_id", BigId, nullable=False, autoincrement=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("version", BigId, nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_client_changes")),
    )
    op.create_table(
        "client_change_base",
        sa.Column("id", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("base", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_change_base")),
    )
    op.execute("INSERT INTO client_change_base (id, base) VALUES (1, 0)")
    op.create_index(
        op.f("ix_client_changes_position_client_id"),
        "client_changes",
        ["position", "client_id"],
    )
    # What there is now is position 0: before any change made from here on.
    op.execute(
        "INSERT INTO client_changes (client_id, position, version, deleted, changed_at) "
        "SELECT id, 0, 1, false, updated_at FROM clients"
    )
    op.execute(
        "INSERT INTO client_changes (client_id, position, version, deleted, changed_at) "
        "SELECT id, 0, 2, true, deleted_at FROM deleted_clients"
    )
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER clients_change ON clients")
        op.execute("DROP TRIGGER clients_tombstone ON clients")
        op.execute("DROP FUNCTION clients_change()")
        op.execute("DROP FUNCTION clients_tombstone()")
    else:
        for trigger in ("clients_change_insert", "clients_change_update", "clients_tombstone"):
            op.execute(f"DROP TRIGGER {trigger}")
    op.drop_index(op.f("ix_client_changes_position_client_id"), table_name="client_changes")
    op.drop_table("client_changes")
    op.drop_table("client_change_base")
    op.drop_column("clients", "version")
