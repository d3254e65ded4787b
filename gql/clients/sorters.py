"""How the clients list can be sorted: any of ten columns, several at once, id last."""

from enum import Enum
from typing import Any

import strawberry

from db.keyset import Ordering, SortKey
from db.models import Client
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


# column, whether it may be NULL (a cursor's values are read by the column's type)
_COLUMNS: dict[ClientOrderField, tuple[Any, bool]] = {
    ClientOrderField.LOGIN: (Client.login, False),
    ClientOrderField.NAME: (Client.name, True),
    ClientOrderField.EMAIL: (Client.email, True),
    ClientOrderField.COUNTRY: (Client.country, True),
    ClientOrderField.CURRENCY: (Client.currency, False),
    ClientOrderField.STATUS: (Client.status, False),
    ClientOrderField.CREATED_AT: (Client.created_at, False),
    ClientOrderField.LAST_ACTIVITY_AT: (Client.last_activity_at, True),
    ClientOrderField.BALANCE: (Client.balance, False),
    ClientOrderField.VALID_TILL: (Client.valid_till, True),
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
        column, nullable = _COLUMNS[order.field]
        keys.append(
            SortKey(
                name=order.field.value,
                column=column,
                descending=order.direction is OrderDirection.DESC,
                nullable=nullable,
            )
        )
    return Ordering(keys=tuple(keys), tiebreaker=Client.__table__.c.id)
