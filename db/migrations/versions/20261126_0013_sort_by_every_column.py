"""Every column of the clients table sortable, each by an index that seeks at any depth.

- `manager_name`: the manager's name, copied onto the client so that an index orders clients
  by it. Triggers keep it in the same transaction as the change, whoever writes: a client's
  manager set or changed, a staff user renamed, a manager removed (manager_id SET NULL).
- `block_ends_at`: when the client's block ends, computed: -infinity for a client never (or no
  longer) blocked, infinity for a block without an end (on SQLite: the first and last moments
  Python has). Blocked now means
  `block_ends_at > now`, so ordering by it groups the blocked apart from the rest at any
  moment, without an index on something that changes with the clock.
- Indexes (column, id) for the manager's name, phone, block end, credit limit, chats, support
  requests and last change; (currency, balance, id) for BALANCE, which sorts by currency first
  (amounts in different currencies are not comparable); PostgreSQL: DESC NULLS LAST twins for
  the optional ones, as 0002 made for the others.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK_ENDS_AT = {
    "postgresql": "CASE WHEN blocked_at IS NULL THEN TIMESTAMPTZ '-infinity' "
    "ELSE coalesce(blocked_until, TIMESTAMPTZ 'infinity') END",
    # as stored moments are spelled (SQLite compares them as text): Python's datetime.min/max
    "sqlite": "CASE WHEN blocked_at IS NULL THEN '0001-01-01 00:00:00.000000' "
    "ELSE coalesce(blocked_until, '9999-12-31 23:59:59.999999') END",
}
SORT_COLUMNS = (
    "manager_name",
    "phone",
    "block_ends_at",
    "credit_limit",
    "chats_count",
    "support_requests_count",
    "updated_at",
)
NULLABLE = ("manager_name", "phone")

POSTGRESQL_TRIGGERS = (
    """
CREATE FUNCTION clients_manager_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.manager_name := (SELECT name FROM staff_users WHERE id = NEW.manager_id);
  RETURN NEW;
END
$$""",
    "CREATE TRIGGER clients_manager_name BEFORE INSERT OR UPDATE OF manager_id ON clients "
    "FOR EACH ROW EXECUTE FUNCTION clients_manager_name()",
    """
CREATE FUNCTION staff_users_name_to_clients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE clients SET manager_name = NEW.name WHERE manager_id = NEW.id;
  RETURN NULL;
END
$$""",
    "CREATE TRIGGER staff_users_name_to_clients AFTER UPDATE OF name ON staff_users "
    "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) "
    "EXECUTE FUNCTION staff_users_name_to_clients()",
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER clients_manager_name_insert AFTER INSERT ON clients "
    "WHEN NEW.manager_id IS NOT NULL BEGIN "
    "UPDATE clients SET manager_name = (SELECT name FROM staff_users WHERE id = NEW.manager_id) "
    "WHERE id = NEW.id; END",
    "CREATE TRIGGER clients_manager_name_update AFTER UPDATE OF manager_id ON clients BEGIN "
    "UPDATE clients SET manager_name = (SELECT name FROM staff_users WHERE id = NEW.manager_id) "
    "WHERE id = NEW.id; END",
    "CREATE TRIGGER staff_users_name_to_clients AFTER UPDATE OF name ON staff_users "
    "WHEN OLD.name IS NOT NEW.name BEGIN "
    "UPDATE clients SET manager_name = NEW.name WHERE manager_id = NEW.id; END",
    # A removed manager's clients lose manager_id by ON DELETE SET NULL, which does not fire
    # SQLite's UPDATE triggers.
    "CREATE TRIGGER staff_users_removed_from_clients AFTER DELETE ON staff_users BEGIN "
    "UPDATE clients SET manager_name = NULL "
    "WHERE manager_id IS NULL AND manager_name IS NOT NULL; END",
)
TRIGGERS = {
    "postgresql": ["clients_manager_name ON clients", "staff_users_name_to_clients ON staff_users"],
    "sqlite": [
        "clients_manager_name_insert",
        "clients_manager_name_update",
        "staff_users_name_to_clients",
        "staff_users_removed_from_clients",
    ],
}


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    postgresql = dialect == "postgresql"
    # not batch operations: on SQLite those copy the table and lose its triggers (0006)
    op.add_column("clients", sa.Column("manager_name", sa.String(length=200), nullable=True))
    computed = sa.Computed(sa.text(BLOCK_ENDS_AT[dialect]), persisted=True if postgresql else None)
    op.add_column("clients", sa.Column("block_ends_at", sa.DateTime(timezone=True), computed))
    op.execute(
        "UPDATE clients SET manager_name = "
        "(SELECT name FROM staff_users WHERE staff_users.id = clients.manager_id) "
        "WHERE manager_id IS NOT NULL"
    )
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    for column in SORT_COLUMNS:
        op.create_index(f"ix_clients_{column}_id", "clients", [column, "id"])
    op.create_index("ix_clients_currency_balance_id", "clients", ["currency", "balance", "id"])
    if postgresql:
        for column in NULLABLE:
            op.execute(
                f"CREATE INDEX ix_clients_{column}_desc_id"
                f" ON clients ({column} DESC NULLS LAST, id DESC)"
            )


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        for column in NULLABLE:
            op.execute(f"DROP INDEX ix_clients_{column}_desc_id")
    op.drop_index("ix_clients_currency_balance_id", table_name="clients")
    for column in SORT_COLUMNS:
        op.drop_index(f"ix_clients_{column}_id", table_name="clients")
    for trigger in TRIGGERS[dialect]:
        op.execute(f"DROP TRIGGER {trigger}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION clients_manager_name()")
        op.execute("DROP FUNCTION staff_users_name_to_clients()")
    op.execute("ALTER TABLE clients DROP COLUMN block_ends_at")
    op.execute("ALTER TABLE clients DROP COLUMN manager_name")
