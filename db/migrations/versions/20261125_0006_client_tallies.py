"""Client tallies: counts per status and filter dimension, kept by triggers.

The clients list's totalCount for its common filters (status, manager, country, currency,
sub-accounts) becomes a sum over a few rows of `client_tallies` instead of a COUNT over up to
the whole table. Triggers keep the tallies in the same transactions that insert, change or
delete clients, whatever does it (the services, the demo loader's COPY, SQL by hand):

- PostgreSQL: statement-level triggers with transition tables, one aggregated upsert per
  statement in key order (so concurrent statements lock tally rows in the same order); a
  statement that changes none of the counted columns (a balance update) writes nothing.
- SQLite: row-level triggers (SQLite has one writer at a time).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (dimension, value) of a client row `c`, in SQL both databases accept.
DIMENSIONS = (
    ("'all'", "''"),
    ("'manager'", "coalesce(CAST(c.manager_id AS TEXT), '')"),
    ("'country'", "coalesce(c.country, '')"),
    ("'currency'", "c.currency"),
    ("'sub_account'", "CASE WHEN c.parent_id IS NULL THEN '0' ELSE '1' END"),
)
COUNTED_COLUMNS = ("status", "manager_id", "country", "currency", "parent_id")


def _per_dimension(source: str, sign: str) -> str:
    """Rows (dimension, value, status, n) for every client row in `source`."""
    return "\nUNION ALL\n".join(
        f"SELECT {dimension} AS dimension, {value} AS value, c.status, {sign} AS n "
        f"FROM {source} AS c"
        for dimension, value in DIMENSIONS
    )


def _postgresql_function(name: str, parts: list[str]) -> str:
    changes = "\nUNION ALL\n".join(parts)
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO client_tallies AS t (dimension, value, status, n)
  SELECT d.dimension, d.value, d.status, sum(d.n)
  FROM ({changes}) AS d
  GROUP BY d.dimension, d.value, d.status
  HAVING sum(d.n) <> 0
  ORDER BY d.dimension, d.value, d.status
  ON CONFLICT (dimension, value, status) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END
$$"""


POSTGRESQL_TRIGGERS = {
    "INSERT": ("REFERENCING NEW TABLE AS new_rows", [_per_dimension("new_rows", "1")]),
    "UPDATE": (
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        [_per_dimension("old_rows", "-1"), _per_dimension("new_rows", "1")],
    ),
    "DELETE": ("REFERENCING OLD TABLE AS old_rows", [_per_dimension("old_rows", "-1")]),
}


def _sqlite_upsert(row: str, sign: str) -> str:
    values = ",\n    ".join(
        f"({dimension}, {value.replace('c.', row + '.')}, {row}.status, {sign})"
        for dimension, value in DIMENSIONS
    )
    return (
        f"INSERT INTO client_tallies (dimension, value, status, n) VALUES\n    {values}\n"
        "  ON CONFLICT (dimension, value, status) DO UPDATE SET n = n + excluded.n;"
    )


SQLITE_TRIGGERS = {
    "INSERT": ("AFTER INSERT", [_sqlite_upsert("NEW", "1")]),
    "UPDATE": (
        f"AFTER UPDATE OF {', '.join(COUNTED_COLUMNS)}",
        [_sqlite_upsert("OLD", "-1"), _sqlite_upsert("NEW", "1")],
    ),
    "DELETE": ("AFTER DELETE", [_sqlite_upsert("OLD", "-1")]),
}


def upgrade() -> None:
    op.create_table(
        "client_tallies",
        sa.Column("dimension", sa.String(length=11), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "dimension IN ('all', 'manager', 'country', 'currency', 'sub_account')",
            name=op.f("ck_client_tallies_dimension"),
        ),
        sa.CheckConstraint(
            "status IN ('ACTIVE', 'INACTIVE')", name=op.f("ck_client_tallies_status")
        ),
        sa.PrimaryKeyConstraint("dimension", "value", "status", name=op.f("pk_client_tallies")),
    )
    dialect = op.get_bind().dialect.name
    for event in ("INSERT", "UPDATE", "DELETE"):
        name = f"client_tallies_{event.lower()}"
        if dialect == "postgresql":
            referencing, parts = POSTGRESQL_TRIGGERS[event]
            op.execute(_postgresql_function(name, parts))
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON clients {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        else:
            timing, statements = SQLITE_TRIGGERS[event]
            body = "\n  ".join(statements)
            op.execute(f"CREATE TRIGGER {name} {timing} ON clients BEGIN\n  {body}\nEND")
    op.execute(
        "INSERT INTO client_tallies (dimension, value, status, n) "
        "SELECT dimension, value, status, sum(n) FROM ("
        + _per_dimension("clients", "1")
        + ") AS d GROUP BY dimension, value, status"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for event in ("INSERT", "UPDATE", "DELETE"):
        name = f"client_tallies_{event.lower()}"
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER {name} ON clients")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("client_tallies")
