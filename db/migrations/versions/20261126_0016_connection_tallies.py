"""Connection types in the tallies: the filter panel's connection counts without a join.

- `clients.connection_types`: the types of the client's connections as bits (SMPP 1, HTTP 2,
  SMTP 4, WEB 8), kept by triggers on `client_connections` in the same transaction.
- The tallies (0006) and pair tallies (0015) gain the dimension `connection`: a client counts
  once for each type it has (so the tallies of two types do not add up to "either").
- Their triggers are made anew with it (COUNTED_COLUMNS gains connection_types), and both
  tables are counted afresh.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 15:00:00
"""

from collections.abc import Sequence
from itertools import permutations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TYPES = (("SMPP", 1), ("HTTP", 2), ("SMTP", 4), ("WEB", 8))
BITS = " UNION ALL ".join(f"SELECT '{name}' AS type, {bit} AS bit" for name, bit in TYPES)
# (dimension, value, join): the value of a client row `c` (and of `b`, a type it has, for the
# one dimension with several values per client), in SQL both databases accept.
Dimension = tuple[str, str, str]
ALL: Dimension = ("'all'", "''", "")
MANAGER: Dimension = ("'manager'", "coalesce(CAST(c.manager_id AS TEXT), '')", "")
COUNTRY: Dimension = ("'country'", "coalesce(c.country, '')", "")
CURRENCY: Dimension = ("'currency'", "c.currency", "")
SUB_ACCOUNT: Dimension = (
    "'sub_account'",
    "CASE WHEN c.parent_id IS NULL THEN '0' ELSE '1' END",
    "",
)
CONNECTION: Dimension = (
    "'connection'",
    "b.type",
    f"JOIN ({BITS}) AS b ON (c.connection_types & b.bit) <> 0",
)
COUNTED = ("status", "manager_id", "country", "currency", "parent_id")
DIMENSION_VALUES = "('all', 'manager', 'country', 'currency', 'sub_account', 'connection')"
OLD_DIMENSION_VALUES = "('all', 'manager', 'country', 'currency', 'sub_account')"

SINGLE = ("client_tallies", "dimension, value, status", "dimension, value, status, n")
PAIR = (
    "client_pair_tallies",
    "by_dimension, by_value, dimension, value, status",
    "by_dimension, by_value, dimension, value, status, n",
)
Table = tuple[str, str, str]


def _dimensions(connection: bool) -> tuple[Dimension, ...]:
    return (ALL, MANAGER, COUNTRY, CURRENCY, SUB_ACCOUNT) + ((CONNECTION,) if connection else ())


def _singles(source: str, sign: str, connection: bool) -> list[str]:
    return [
        f"SELECT {dimension} AS dimension, {value} AS value, c.status AS status, {sign} AS n "
        f"FROM {source} AS c {join}"
        for dimension, value, join in _dimensions(connection)
    ]


def _pairs(source: str, sign: str, connection: bool) -> list[str]:
    # the connection dimension pairs with the others only: at most one join a pair
    return [
        f"SELECT {by[0]} AS by_dimension, {by[1]} AS by_value, {of[0]} AS dimension, "
        f"{of[1]} AS value, c.status AS status, {sign} AS n FROM {source} AS c {by[2]} {of[2]}"
        for by, of in permutations(_dimensions(connection)[1:], 2)
    ]


TALLIES = {"client_tallies": (SINGLE, _singles), "client_pair_tallies": (PAIR, _pairs)}
EVENTS = ("INSERT", "UPDATE", "DELETE")


def _postgresql_function(name: str, table: Table, parts: list[str]) -> str:
    target, key, columns = table
    changes = "\nUNION ALL\n".join(parts)
    keyed = ", ".join(f"d.{column.strip()}" for column in key.split(","))
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {target} AS t ({columns})
  SELECT {keyed}, sum(d.n)
  FROM ({changes}) AS d
  GROUP BY {keyed}
  HAVING sum(d.n) <> 0
  ORDER BY {keyed}
  ON CONFLICT ({key}) DO UPDATE SET n = t.n + excluded.n;
  RETURN NULL;
END
$$"""


def _sqlite_row(row: str, connection: bool) -> str:
    """The trigger's OLD or NEW row as a one-row table (SQLite's triggers have no transition
    tables)."""
    columns = [*COUNTED, *(("connection_types",) if connection else ())]
    return "(SELECT " + ", ".join(f"{row}.{column} AS {column}" for column in columns) + ")"


def _tally_triggers(dialect: str, connection: bool) -> None:
    """The tallies' triggers on clients (0006, 0015), with or without the connection
    dimension."""
    for name, (table, parts_of) in TALLIES.items():
        target, key, columns = table
        for event in EVENTS:
            trigger = f"{name}_{event.lower()}"
            if dialect == "postgresql":  # the statement-level triggers call these functions
                old = parts_of("old_rows", "-1", connection) if event != "INSERT" else []
                new = parts_of("new_rows", "1", connection) if event != "DELETE" else []
                op.execute(_postgresql_function(trigger, table, old + new))
                continue
            old = parts_of(_sqlite_row("OLD", connection), "-1", connection)
            new = parts_of(_sqlite_row("NEW", connection), "1", connection)
            parts = {"INSERT": new, "UPDATE": old + new, "DELETE": old}[event]
            counted = [*COUNTED, *(("connection_types",) if connection else ())]
            timing = {
                "INSERT": "AFTER INSERT",
                "UPDATE": f"AFTER UPDATE OF {', '.join(counted)}",
                "DELETE": "AFTER DELETE",
            }[event]
            body = "\n  ".join(
                f"INSERT INTO {target} ({columns}) SELECT * FROM ({part}) WHERE true "
                f"ON CONFLICT ({key}) DO UPDATE SET n = n + excluded.n;"
                for part in parts
            )
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            op.execute(f"CREATE TRIGGER {trigger} {timing} ON clients BEGIN\n  {body}\nEND")


def _drop_sqlite_tally_triggers() -> None:
    """SQLite: the tallies' triggers go before their tables are copied (the copy's rename
    checks every trigger that names them); _tally_triggers makes them again."""
    for name in TALLIES:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}_{event.lower()}")


def _recount(connection: bool) -> None:
    for table, parts_of in TALLIES.values():
        target, key, columns = table
        op.execute(f"DELETE FROM {target}")
        union = "\nUNION ALL\n".join(parts_of("clients", "1", connection))
        op.execute(
            f"INSERT INTO {target} ({columns}) SELECT {key}, sum(n) FROM ({union}) AS d "
            f"GROUP BY {key}"
        )


def _dimension_checks(values: str) -> None:
    for table in ("client_tallies", "client_pair_tallies"):
        columns = ["dimension"] + (["by_dimension"] if table == "client_pair_tallies" else [])
        with op.batch_alter_table(table) as batch:  # no triggers of their own to lose
            for column in columns:
                name = op.f(f"ck_{table}_{column}")
                batch.drop_constraint(name, type_="check")
                batch.create_check_constraint(name, f"{column} IN {values}")


MASK = (
    "coalesce((SELECT sum(b.bit) FROM client_connections AS x JOIN ({bits}) AS b "
    "ON b.type = x.type WHERE x.client_id = {client}), 0)"
)
CONNECTION_EVENTS = (
    ("INSERT", "REFERENCING NEW TABLE AS new_rows", "SELECT client_id FROM new_rows", ("NEW",)),
    (
        "UPDATE",
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT client_id FROM old_rows UNION SELECT client_id FROM new_rows",
        ("OLD", "NEW"),
    ),
    ("DELETE", "REFERENCING OLD TABLE AS old_rows", "SELECT client_id FROM old_rows", ("OLD",)),
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    postgresql = dialect == "postgresql"
    op.add_column(
        "clients",
        sa.Column(
            "connection_types", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
        ),
    )
    if not postgresql:
        _drop_sqlite_tally_triggers()
    _dimension_checks(DIMENSION_VALUES)
    # every client's types, before the triggers count them (then counted afresh, below)
    if postgresql:
        op.execute("ALTER TABLE clients DISABLE TRIGGER USER")
    op.execute(
        f"UPDATE clients SET connection_types = {MASK.format(bits=BITS, client='clients.id')} "
        "WHERE id IN (SELECT client_id FROM client_connections)"
    )
    if postgresql:
        op.execute("ALTER TABLE clients ENABLE TRIGGER USER")
    _tally_triggers(dialect, connection=True)
    for event, referencing, changed, rows in CONNECTION_EVENTS:
        name = f"clients_connection_types_{event.lower()}"
        if postgresql:
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n  UPDATE clients AS c SET connection_types = "
                f"{MASK.format(bits=BITS, client='c.id')}\n  WHERE c.id IN ({changed});\n"
                f"  RETURN NULL;\nEND\n$$"
            )
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON client_connections {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        else:
            body = " ".join(
                f"UPDATE clients SET connection_types = "
                f"{MASK.format(bits=BITS, client=f'{row}.client_id')} WHERE id = {row}.client_id;"
                for row in rows
            )
            timing = "AFTER UPDATE OF type, client_id" if event == "UPDATE" else f"AFTER {event}"
            op.execute(f"CREATE TRIGGER {name} {timing} ON client_connections BEGIN {body} END")
    _recount(connection=True)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for event, *_ in CONNECTION_EVENTS:
        name = f"clients_connection_types_{event.lower()}"
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER {name} ON client_connections")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")
    op.execute("DELETE FROM client_tallies WHERE dimension = 'connection'")
    op.execute(
        "DELETE FROM client_pair_tallies "
        "WHERE dimension = 'connection' OR by_dimension = 'connection'"
    )
    if dialect != "postgresql":
        _drop_sqlite_tally_triggers()
    _dimension_checks(OLD_DIMENSION_VALUES)
    _tally_triggers(dialect, connection=False)
    op.execute("ALTER TABLE clients DROP COLUMN connection_types")
