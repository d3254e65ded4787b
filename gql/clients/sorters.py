"""How the clients list can be sorted: by any column the clients table shows, several at
once, id last; each key seeks an index at any depth."""

from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any

import strawberry
from sqlalchemy import Boolean, type_coerce

from db.enums import ClientStatus
from db.keyset import Ordering, SortKey
from db.models import FAR_FUTURE, FAR_PAST, Client
from gql.clients.filters import can_log_in
from gql.errors import BadUserInput


@strawberry.enum(description="A column the clients list can be sorted by.")
class ClientOrderField(Enum):
    LOGIN = strawberry.enum_value("LOGIN", description="Login, A to Z.")
    NAME = strawberry.enum_value("NAME", description="Name; clients without one last.")
    EMAIL = strawberry.enum_value("EMAIL", description="E-mail; clients without one last.")
    PHONE = strawberry.enum_value(
        "PHONE", description="Phone (E.164 digits); clients without one last."
    )
    COUNTRY = strawberry.enum_value(
        "COUNTRY", description="Country code; clients without one last."
    )
    CURRENCY = strawberry.enum_value("CURRENCY", description="Currency code.")
    STATUS = strawberry.enum_value("STATUS", description="Status: ACTIVE before INACTIVE.")
    MANAGER = strawberry.enum_value(
        "MANAGER",
        description="The manager's name; clients without a manager last in both directions.",
    )
    CAN_LOGIN = strawberry.enum_value(
        "CAN_LOGIN",
        description="Whether the client can log in now (`canLogin`): those who cannot first "
        "(ASC) or those who can first (DESC).",
    )
    BLOCKED = strawberry.enum_value(
        "BLOCKED",
        description="Not blocked first (ASC) or blocked first (DESC); blocked clients among "
        "themselves by when their block ends (soonest first for ASC, blocks without an end "
        "last), the others by when their last block ended.",
    )
    CREDIT_LIMIT = strawberry.enum_value("CREDIT_LIMIT", description="Credit limit.")
    CHATS = strawberry.enum_value("CHATS", description="Number of live chat conversations.")
    SUPPORT_REQUESTS = strawberry.enum_value(
        "SUPPORT_REQUESTS", description="Number of support requests (tickets)."
    )
    CREATED_AT = strawberry.enum_value("CREATED_AT", description="When the client was created.")
    UPDATED_AT = strawberry.enum_value(
        "UPDATED_AT", description="When the client was last changed."
    )
    LAST_ACTIVITY_AT = strawberry.enum_value(
        "LAST_ACTIVITY_AT", description="Last activity; never-active clients last."
    )
    BALANCE = strawberry.enum_value(
        "BALANCE",
        description="Balance within each currency: by currency code first (in the same "
        "direction), then amount, since amounts in different currencies do not compare. With "
        "one currency in the filter, simply by amount.",
    )
    VALID_TILL = strawberry.enum_value(
        "VALID_TILL", description="When paid access ends; clients without an end last."
    )


@strawberry.enum(description="Sort direction. Empty values (null) come last either way.")
class OrderDirection(Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest, earliest or A first.")
    DESC = strawberry.enum_value("DESC", description="Largest, latest or Z first.")


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
    ClientOrderField.PHONE: (Client.phone, True),
    ClientOrderField.COUNTRY: (Client.country, True),
    ClientOrderField.CURRENCY: (Client.currency, False),
    ClientOrderField.STATUS: (Client.status, False),
    ClientOrderField.MANAGER: (Client.__table__.c.manager_name, True),
    ClientOrderField.BLOCKED: (Client.__table__.c.block_ends_at, False),
    ClientOrderField.CREDIT_LIMIT: (Client.credit_limit, False),
    ClientOrderField.CHATS: (Client.chats_count, False),
    ClientOrderField.SUPPORT_REQUESTS: (Client.support_requests_count, False),
    ClientOrderField.CREATED_AT: (Client.created_at, False),
    ClientOrderField.UPDATED_AT: (Client.updated_at, False),
    ClientOrderField.LAST_ACTIVITY_AT: (Client.last_activity_at, True),
    ClientOrderField.BALANCE: (Client.balance, False),
    ClientOrderField.VALID_TILL: (Client.valid_till, True),
}
TIME_DEPENDENT = frozenset({ClientOrderField.CAN_LOGIN})
# Columns whose values are known, in the order the database sorts them, and whether others
# lie between them: a sort led by one seeks each value's rows apart (Ordering.partitions).
# A status has two values; a block's end is one of its infinities (no block, or one without
# an end) or, between them, the end of a block in force or over.
# Columns whose values many clients share (a few countries, credit limits of round numbers):
# leading a sort, the clients sharing the position's value are read apart, by the next key.
SHARED_VALUES = frozenset(
    {
        ClientOrderField.COUNTRY,
        ClientOrderField.CURRENCY,
        ClientOrderField.CREDIT_LIMIT,
        ClientOrderField.CHATS,
        ClientOrderField.SUPPORT_REQUESTS,
    }
)
KNOWN_VALUES: dict[ClientOrderField, tuple[tuple[Any, ...], bool]] = {
    ClientOrderField.STATUS: (tuple(sorted(ClientStatus)), False),
    ClientOrderField.BLOCKED: ((FAR_PAST, FAR_FUTURE), True),
}
NEWEST_FIRST = [ClientOrder(field=ClientOrderField.CREATED_AT, direction=OrderDirection.DESC)]


def client_ordering(order_by: list[ClientOrder] | None, *, now: datetime | None) -> Ordering:
    """The keyset ordering for `orderBy` (default: newest first), the id breaking ties;
    `now` for the keys that depend on the moment (CAN_LOGIN), which need one. The same
    arguments give the same Ordering object, so the loaders batch the sub-account pages of
    every client of a list in one statement (their keys compare the orderings)."""
    orders = order_by or NEWEST_FIRST
    fields = [order.field for order in orders]
    if len(set(fields)) != len(fields):
        raise BadUserInput("Each field may appear in `orderBy` only once.", field="orderBy")
    spec = tuple((order.field, order.direction) for order in orders)
    time_dependent = any(field in TIME_DEPENDENT for field in fields)
    return _ordering(spec, now if time_dependent else None)


@lru_cache(maxsize=1024)
def _ordering(
    spec: tuple[tuple[ClientOrderField, OrderDirection], ...], now: datetime | None
) -> Ordering:
    fields = [field for field, _ in spec]
    keys = []
    for index, (field, direction) in enumerate(spec):
        order = ClientOrder(field=field, direction=direction)
        descending = order.direction is OrderDirection.DESC
        earlier = fields[:index]
        if order.field is ClientOrderField.BALANCE and ClientOrderField.CURRENCY not in earlier:
            # amounts compare within a currency only (one index: currency, balance, id)
            keys.append(
                SortKey(
                    name="BALANCE_CURRENCY",
                    column=Client.__table__.c.currency,
                    descending=descending,
                    composite=True,
                )
            )
        if order.field is ClientOrderField.CAN_LOGIN:
            assert now is not None, "CAN_LOGIN orders by the moment of the request"
            column = type_coerce(can_log_in(now), Boolean).label("can_login")
            keys.append(
                SortKey(
                    name=order.field.value,
                    column=column,
                    descending=descending,
                    values=(False, True),
                    computed=True,
                )
            )
            continue
        column, nullable = _COLUMNS[order.field]
        values, between = KNOWN_VALUES.get(order.field, ((), False))
        shared = order.field in SHARED_VALUES
        keys.append(
            SortKey(
                name=order.field.value,
                column=column,
                descending=descending,
                nullable=nullable,
                values=values,
                between=between,
                shared=shared,
            )
        )
    return Ordering(keys=tuple(keys), tiebreaker=Client.__table__.c.id)
