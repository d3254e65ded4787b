"""Select builders shared by loaders, resolvers and services (Core rows, not ORM objects)."""

from typing import Any, TypeAlias

from sqlalchemy import Row, Select, select

from db.models import Client, StaffUser

# A result row, and a SELECT, of any number of columns.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
AnySelect: TypeAlias = Select[*tuple[Any, ...]]

# Everything a client row shows; the password hash never leaves the services.
CLIENT_COLUMNS = tuple(
    c for c in Client.__table__.c if c.name not in ("password_hash", "search_text")
)
STAFF_COLUMNS = tuple(c for c in StaffUser.__table__.c if c.name != "password_hash")


def select_clients() -> AnySelect:
    """All client columns but the password hash."""
    return select(*CLIENT_COLUMNS)


def select_staff() -> AnySelect:
    """All staff columns but the password hash."""
    return select(*STAFF_COLUMNS)
