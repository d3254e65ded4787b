"""Select builders shared by loaders, resolvers and services (Core rows, not ORM objects)."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeAlias

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Row,
    Select,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from db.base import ExactDecimal
from db.json_values import json_equals
from db.models import BILLING_MODE_KEY, Client, StaffUser, SystemSetting

# A result row, and a SELECT, of any number of columns.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
AnySelect: TypeAlias = Select[*tuple[Any, ...]]

# Everything a client row shows; the password hash never leaves the services.
CLIENT_COLUMNS = tuple(
    c for c in Client.__table__.c if c.name not in ("password_hash", "search_text")
)
STAFF_COLUMNS = tuple(c for c in StaffUser.__table__.c if c.name != "password_hash")


def among(dialect: str, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids` for any number of ids, as one parameter (a statement holds at most
    32,767 parameters on PostgreSQL, and about as many on SQLite): an array on PostgreSQL, a
    JSON array read by json_each on SQLite."""
    if dialect == "postgresql":
        return column == any_(  # type: ignore[no-any-return]
            bindparam(None, list(ids), type_=postgresql.ARRAY(BigInteger))
        )
    listed: AnySelect = select(literal_column("value")).select_from(
        func.json_each(bindparam(None, orjson.dumps(list(ids)).decode(), type_=String))
    )
    return column.in_(listed)  # type: ignore[no-any-return]


def billing_mode_column() -> ColumnElement[bool]:
    """Whether Billing Mode is on, as a column of a statement's rows: PostgreSQL reads the
    setting once per statement, in the rows' own snapshot."""
    setting = (
        select(json_equals(SystemSetting.__table__.c.value, True))
        .where(SystemSetting.key == BILLING_MODE_KEY)
        .scalar_subquery()
    )
    return type_coerce(func.coalesce(setting, true()), Boolean)


def select_clients() -> AnySelect:
    """All client columns but the password hash, and whether Billing Mode is on (for
    canLogin)."""
    return select(*CLIENT_COLUMNS, billing_mode_column().label("billing_mode"))


def select_staff() -> AnySelect:
    """All staff columns but the password hash."""
    return select(*STAFF_COLUMNS)


# SQLite keeps an ExactDecimal as an integer count of 10**-scale units, and SUM() of integers
# stops at 2**63 (about 9.2 * 10**14 at scale 4). Summed in two parts, each stays far below.
SPLIT = 10**9


def exact_sum(column: Any, dialect: str) -> list[ColumnElement[Any]]:
    """The SELECT columns that give the exact sum of an ExactDecimal column (read back with
    `read_exact_sum`): one SUM on PostgreSQL, the high and low parts on SQLite."""
    if dialect != "sqlite":
        return [func.sum(column)]
    units = type_coerce(column, BigInteger)
    return [func.sum(units // SPLIT), func.sum(units % SPLIT)]  # both truncate toward zero


def read_exact_sum(values: Sequence[Any], column: Any, dialect: str) -> Decimal:
    """The sum from the values `exact_sum`'s columns gave (0 for no rows)."""
    if dialect != "sqlite":
        return Decimal(values[0] or 0)
    column_type = column.type
    assert isinstance(column_type, ExactDecimal)
    units = int(values[0] or 0) * SPLIT + int(values[1] or 0)
    return Decimal(units).scaleb(-column_type.scale)


class settled_position(FunctionElement[int]):
    """The change position below which every change has committed or rolled back for good
    (`client_changes.position`). On PostgreSQL: the lowest transaction id the statement's
    snapshot still sees running — but not those proven to be another database's (running
    there now), so a long transaction elsewhere in the cluster does not hold the feed back —
    or, if none, the snapshot's xmax; every transaction below it has ended, and every later
    one gets a higher id. An id whose transaction ended since the snapshot cannot be placed
    and counts as ours (held back for one statement). On SQLite, whose writers take turns and
    whose readers see only committed changes: no bound."""

    type = BigInteger()
    inherit_cache = True
    name = "settled_position"


# xid8 is the 32-bit xid with its epoch above it; pg_stat_activity shows the 32-bit xid
_SETTLED_POSTGRESQL = """((SELECT base FROM client_change_base) + (SELECT least(
  pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
  (SELECT min(running::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS running
   WHERE NOT EXISTS (
     SELECT 1 FROM pg_stat_activity AS other
     WHERE other.datname <> current_database()
       AND other.backend_xid::text::bigint = running::text::bigint % 4294967296)))))"""


@compiles(settled_position, "postgresql")
def _settled_position_postgresql(element: settled_position, compiler: Any, **kw: Any) -> str:
    return _SETTLED_POSTGRESQL


@compiles(settled_position, "sqlite")
def _settled_position_sqlite(element: settled_position, compiler: Any, **kw: Any) -> str:
    return "9223372036854775807"
