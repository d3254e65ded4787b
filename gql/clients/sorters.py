"""How the clients list can be sorted: any of ten columns, several at once, id last."""

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry

from db.keyset import Ordering, SortKey
from db.models import Client
from gql.enums import ClientStatus
from gql.errors import BadUserInput


@strawberry.enum(description="A column the clients list can be sorted by.")
class ClientOrderField(Enum):
    LOGIN = "LOGIN"
    NAME = "NAME"
    EMAIL = "EMAIL"
    COUNTRY = "COUNTRY"
    CURRENCY = "CURRENCY"
    STATUS = "STATUS"
    CREATED_AT = "CREATED_AT"
    LAST_ACTIVITY_AT = "LAST_ACTIVITY_AT"
    BALANCE = "BALANCE"
    VALID_TILL = "VALID_TILL"


@strawberry.enum(description="Sort direction. Empty values (null) come last either way.")
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(description="One sort key; give several for a multi-column sort.")
class ClientOrder:
    field: ClientOrderField = strawberry.field(description="The column to sort by.")
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="ASC (default) or DESC."
    )


# column, whether it may be NULL, how a cursor's JSON value becomes a column value
_COLUMNS: dict[ClientOrderField, tuple[Any, bool, Any]] = {
    ClientOrderField.LOGIN: (Client.login, False, str),
    ClientOrderField.NAME: (Client.name, True, str),
    ClientOrderField.EMAIL: (Client.email, True, str),
    ClientOrderField.COUNTRY: (Client.country, True, str),
    ClientOrderField.CURRENCY: (Client.currency, False, str),
    ClientOrderField.STATUS: (Client.status, False, ClientStatus),
    ClientOrderField.CREATED_AT: (Client.created_at, False, datetime.fromisoformat),
    ClientOrderField.LAST_ACTIVITY_AT: (Client.last_activity_at, True, datetime.fromisoformat),
    ClientOrderField.BALANCE: (Client.balance, False, Decimal),
    ClientOrderField.VALID_TILL: (Client.valid_till, True, datetime.fromisoformat),
}
NEWEST_FIRST = [ClientOrder(field=ClientOrderField.CREATED_AT, direction=OrderDirection.DESC)]


def client_ordering(order_by: list[ClientOrder] | None) -> Ordering:
    """The keyset ordering for `orderBy` (default: newest first), the id breaking ties."""
    orders = order_by or NEWEST_FIRST
    fields = [order.field for order in orders]
    if len(set(fields)) != len(fields):
        raise BadUserInput("Each field may appear in `orderBy` only once.", field="orderBy")
    keys = []
    for order in orders:
        column, nullable, parse = _COLUMNS[order.field]
        keys.append(
            SortKey(
                name=order.field.value,
                column=column,
                descending=order.direction is OrderDirection.DESC,
                nullable=nullable,
                parse=parse,
            )
        )
    return Ordering(keys=tuple(keys), tiebreaker=Client.__table__.c.id)
