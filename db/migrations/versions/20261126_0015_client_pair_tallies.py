"""Client pair tallies: counts per status and pair of filter dimensions, kept by triggers.

The filter panel counts, for a filter on one dimension (say country DE), the clients per
value of each other dimension (managers of clients in DE). `client_pair_tallies` holds those
counts for every pair of the tallied dimensions (manager, country, currency, sub-account), in
both orders, so each is a sum over a few rows found by an index. Triggers keep them exactly
as 0006's keep `client_tallies`: PostgreSQL statement-level with transition tables, one
aggregated upsert per statement in key order; SQLite row-level.

And the index on the block's end also holds what the panel's counts of blocked clients read,
so those counts read the index alone.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 14:00:00
"""

from collections.abc import Sequence
from itertools import permutations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (dimension, value) of a client row `c`, in SQL both databases accept (as in 0006).
DIMENSIONS = (
    ("'manager'", "coalesce(CAST(c.manager_id AS TEXT), '')"),
    ("'country'", "coalesce(c.country, '')"),
    ("'currency'", "c.currency"),
    ("'sub_account'", "CASE WHEN c.parent_id IS NULL THEN '0' ELSE '1' END"),
)
PAIRS = list(permutations(DIMENSIONS, 2))
COUNTED_COLUMNS = ("status", "manager_id", "country", "currency", "parent_id")
COLUMNS = "by_dimension, by_value, dimension, value, status, n"
KEY = "by_dimension, by_value, dimension, value, status"


def _per_pair(source: str, sign: str) -> str:
    """Rows (by_dimension, by_value, dimension, value, status, n) for every row in `source`."""
    return "\nUNION ALL\n".join(
        f"SELECT {by_dimension} AS by_dimension, {by_value} AS by_value, {dimension} AS "
        f"dimension, {value} AS value, c.status, {sign} AS n FROM {source} AS c"
        for (by_dimension, by_value), (dimension, value) in PAIRS
    )


def _postgresql_function(name: str, parts: list[str]) -> str:
    changes = "\nUNION ALL\n".join(parts)
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO client_pair_tallies AS t ({COLUMNS})
  SELECT d.by_dimension, d.by_value, d.dimension, d.value, d.status, sum(d.n)
  FROM ({changes}) AS d
  GROUP BY d.by_dimension, d.by_value, d.dimension, d.value, d.status
  HAVING sum(d.n) <> 0
  ORDER BY d.by_dimension, d.by_value, d.dimension, d.value, d.status
  ON CONFLICT ({KEY}) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END
$$"""


POSTGRESQL_TRIGGERS = {
    "INSERT": ("REFERENCING NEW TABLE AS new_rows", [_per_pair("new_rows", "1")]),
    "UPDATE": (
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        [_per_pair("old_rows", "-1"), _per_pair("new_rows", "1")],
    ),
    "DELETE": ("REFERENCING OLD TABLE AS old_rows", [_per_pair("old_rows", "-1")]),
}


def _sqlite_upsert(row: str, sign: str) -> str:
    values = ",\n    ".join(
        f"({by_dimension}, {by_value.replace('c.', row + '.')}, {dimension}, "
        f"{value.replace('c.', row + '.')}, {row}.status, {sign})"
        for (by_dimension, by_value), (dimension, value) in PAIRS
    )
    return (
        f"INSERT INTO client_pair_tallies ({COLUMNS}) VALUES\n    {values}\n"
        f"  ON CONFLICT ({KEY}) DO UPDATE SET n = n + excluded.n;"
    )


SQLITE_TRIGGERS = {
    "INSERT": ("AFTER INSERT", [_sqlite_upsert("NEW", "1")]),
    "UPDATE": (
        f"AFTER UPDATE OF {', '.join(COUNTED_COLUMNS)}",
        [_sqlite_upsert("OLD", "-1"), _sqlite_upsert("NEW", "1")],
    ),
    "DELETE": ("AFTER DELETE", [_sqlite_upsert("OLD", "-1")]),
}
DIMENSION_VALUES = "('all', 'manager', 'country', 'currency', 'sub_account')"
BLOCK_INDEX = "ix_clients_block_ends_at_id"


def upgrade() -> None:
    op.create_table(
        "client_pair_tallies",
        sa.Column("by_dimension", sa.String(length=11), nullable=False),
        sa.Column("by_value", sa.String(length=64), nullable=False),
        sa.Column("dimension", sa.String(length=11), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            f"by_dimension IN {DIMENSION_VALUES}",
            name=op.f("ck_client_pair_tallies_by_dimension"),
        ),
        sa.CheckConstraint(
            f"dimension IN {DIMENSION_VALUES}", name=op.f("ck_client_pair_tallies_dimension")
        ),
        sa.CheckConstraint(
            "status IN ('ACTIVE', 'INACTIVE')", name=op.f("ck_client_pair_tallies_status")
        ),
        sa.PrimaryKeyConstraint(
            "by_dimension",
            "by_value",
            "dimension",
            "value",
            "status",
            name=op.f("pk_client_pair_tallies"),
        ),
    )
    dialect = op.get_bind().dialect.name
    for event in ("INSERT", "UPDATE", "DELETE"):
        name = f"client_pair_tallies_{event.lower()}"
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
        f"INSERT INTO client_pair_tallies ({COLUMNS}) "
        f"SELECT {KEY}, sum(n) FROM ({_per_pair('clients', '1')}) AS d GROUP BY {KEY}"
    )
    op.drop_index(BLOCK_INDEX, table_name="clients")
    op.create_index(
        BLOCK_INDEX,
        "clients",
        ["block_ends_at", "id", "status", "country", "currency", "manager_id", "parent_id"],
    )


def downgrade() -> None:
    op.drop_index(BLOCK_INDEX, table_name="clients")
    op.create_index(BLOCK_INDEX, "clients", ["block_ends_at", "id"])
    dialect = op.get_bind().dialect.name
    for event in ("INSERT", "UPDATE", "DELETE"):
        name = f"client_pair_tallies_{event.lower()}"
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER {name} ON clients")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("client_pair_tallies")
