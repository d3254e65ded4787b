"""Facet counts for the clients filter panel: for each value of a dimension, how many clients
the filter and search select with the filter's own condition on that dimension left out (as
shops count), so each choice says how many clients it gives and no value without clients is
offered.

Exact. Without a search and with no filter but statuses, the client dimensions are sums of
the tallies the triggers keep (db.models.ClientTally); otherwise one GROUP BY per dimension
over the clients the other conditions select.
"""

import dataclasses
from collections.abc import Iterable
from typing import Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, func, select

from db.enums import ClientStatus, ConnectionType, Scope, TallyDimension
from db.models import Client as ClientModel
from db.models import ClientConnection, ClientTally
from gql.arguments import check_arguments
from gql.clients.filters import (
    ClientFilter,
    FilterScope,
    client_conditions,
    filter_problems,
    is_blocked,
)
from gql.context import Info
from gql.permissions import HasScope
from gql.staff.types import StaffUser

CLIENTS = ClientModel.__table__


@strawberry.type(description="Clients in one status.")
class StatusFacet:
    status: ClientStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Clients the filter selects in it.")


@strawberry.type(description="Clients in one country.")
class CountryFacet:
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    count: int = strawberry.field(description="Clients the filter selects in it.")


@strawberry.type(description="Clients using one currency.")
class CurrencyFacet:
    currency: str = strawberry.field(description="ISO 4217 code.")
    count: int = strawberry.field(description="Clients the filter selects using it.")


@strawberry.type(description="Clients of one manager, or of none.")
class ManagerFacet:
    manager_id: strawberry.Private[int | None]
    count: int = strawberry.field(description="Clients the filter selects with this manager.")

    @strawberry.field(description="The manager; null for clients without one (UNASSIGNED).")
    async def manager(self, info: Info) -> StaffUser | None:
        if self.manager_id is None:
            return None
        row = await info.context.loaders.staff_user_by_id.load(self.manager_id)
        return StaffUser.from_optional_row(row)


@strawberry.type(description="Clients for which a yes/no question has one answer.")
class BooleanFacet:
    value: bool = strawberry.field(description="The answer.")
    count: int = strawberry.field(description="Clients the filter selects with it.")


@strawberry.type(description="Clients with a connection of one type.")
class ConnectionTypeFacet:
    type: ConnectionType = strawberry.field(description="The connection type.")
    count: int = strawberry.field(
        description="Clients the filter selects with a connection of this type (in "
        "`connectionStatus`, if the filter gives one); a client with several types counts in "
        "each."
    )


@strawberry.type(
    description="Counts for the filter panel: per value of each dimension, the clients the "
    "filter and search select with the filter's own condition on that dimension left out. "
    "Values without clients are left out; most clients first. For the country and currency "
    "choices of a filter panel (the create form offers every code: `countries`, "
    "`currencies`)."
)
class ClientFacets:
    statuses: list[StatusFacet] = strawberry.field(description="By status (`statuses`).")
    countries: list[CountryFacet] = strawberry.field(
        description="By country (`countries`); clients without a country are not counted."
    )
    currencies: list[CurrencyFacet] = strawberry.field(description="By currency (`currencies`).")
    managers: list[ManagerFacet] = strawberry.field(
        description="By manager (`managerIds` and `ownership`), clients without one as null."
    )
    blocked: list[BooleanFacet] = strawberry.field(description="Blocked now or not (`blocked`).")
    has_parent: list[BooleanFacet] = strawberry.field(
        description="Sub-accounts (true) and top-level clients (false) (`hasParent`)."
    )
    connection_types: list[ConnectionTypeFacet] = strawberry.field(
        description="By connection type (`connectionTypes`)."
    )


# Each client dimension: the filter fields it leaves out, and its value in SQL.
DIMENSIONS: dict[str, tuple[tuple[str, ...], ColumnElement[Any]]] = {
    "statuses": (("statuses",), CLIENTS.c.status),
    "countries": (("countries",), CLIENTS.c.country),
    "currencies": (("currencies",), CLIENTS.c.currency),
    "managers": (("manager_ids", "ownership"), CLIENTS.c.manager_id),
    "has_parent": (("has_parent",), CLIENTS.c.parent_id.is_not(None)),
}
TALLIED = {
    "countries": TallyDimension.COUNTRY,
    "currencies": TallyDimension.CURRENCY,
    "managers": TallyDimension.MANAGER,
    "has_parent": TallyDimension.SUB_ACCOUNT,
}
CONNECTION_FIELDS = ("connection_types", "connection_status", "connection_match")


def without(filter: ClientFilter | None, names: Iterable[str]) -> ClientFilter | None:
    """The filter with these fields left out."""
    if filter is None:
        return None
    return dataclasses.replace(filter, **dict.fromkeys(names))


def _tallied(filter: ClientFilter | None, search: str | None) -> bool:
    """Whether the tallies can tell: no search, no filter but statuses."""
    if search is not None and search.strip():
        return False
    if filter is None:
        return True
    given = {
        field.name
        for field in dataclasses.fields(filter)
        if getattr(filter, field.name) not in (None, [])
    }
    return given <= {"statuses"}


async def client_facets(
    info: Info, filter: ClientFilter | None, search: str | None
) -> ClientFacets:
    """The facets for a filter and search (arguments checked: gql/arguments.py)."""
    viewer = info.context.viewer
    assert viewer is not None  # the field requires a scope
    scope = FilterScope(viewer_id=viewer.staff_id, now=info.context.now)
    db = info.context.db
    counts: dict[str, list[tuple[Any, int]]] = {}
    statuses = filter.statuses if filter is not None and filter.statuses else None
    tallied = _tallied(filter, search)
    for name, (fields, value) in DIMENSIONS.items():
        statement: Any
        if tallied and name in TALLIED:
            statement = select(ClientTally.value, func.sum(ClientTally.n)).where(
                ClientTally.dimension == TALLIED[name]
            )
            if statuses:
                statement = statement.where(ClientTally.status.in_(statuses))
            statement = statement.group_by(ClientTally.value)
            found = [(_tally_value(name, v), int(n)) for v, n in await db.execute(statement)]
        elif tallied:  # statuses: every status, its own filter left out
            statement = (
                select(ClientTally.status, func.sum(ClientTally.n))
                .where(ClientTally.dimension == TallyDimension.ALL)
                .group_by(ClientTally.status)
            )
            found = [(v, int(n)) for v, n in await db.execute(statement)]
        else:
            conditions = client_conditions(without(filter, fields), search, scope)
            statement = (
                select(value, func.count()).select_from(CLIENTS).where(*conditions).group_by(value)
            )
            found = [(v, int(n)) for v, n in await db.execute(statement)]
        counts[name] = found
    # blocked: time-dependent, so never tallied; an index on the block's end finds the few
    conditions = client_conditions(without(filter, ("blocked",)), search, scope)
    total = sum(n for _, n in counts["has_parent"]) if tallied else None
    if total is None:
        counted = select(func.count()).select_from(CLIENTS).where(*conditions)
        total = int(await db.scalar(counted) or 0)
    blocked = int(
        await db.scalar(select(func.count()).where(*conditions, is_blocked(scope.now))) or 0
    )
    counts["blocked"] = [(True, blocked), (False, total - blocked)]
    counts["connection_types"] = await _connection_types(info, filter, search, scope)

    def ordered(name: str) -> list[tuple[Any, int]]:
        kept = [(v, n) for v, n in counts[name] if n > 0 and (v is not None or name == "managers")]
        return sorted(kept, key=lambda item: (-item[1], str(item[0])))

    return ClientFacets(
        statuses=[StatusFacet(status=ClientStatus(v), count=n) for v, n in ordered("statuses")],
        countries=[CountryFacet(country=v, count=n) for v, n in ordered("countries")],
        currencies=[CurrencyFacet(currency=v, count=n) for v, n in ordered("currencies")],
        managers=[ManagerFacet(manager_id=v, count=n) for v, n in ordered("managers")],
        blocked=[BooleanFacet(value=v, count=n) for v, n in ordered("blocked")],
        has_parent=[BooleanFacet(value=bool(v), count=n) for v, n in ordered("has_parent")],
        connection_types=[
            ConnectionTypeFacet(type=ConnectionType(v), count=n)
            for v, n in ordered("connection_types")
        ],
    )


def _tally_value(name: str, value: str) -> Any:
    """A tally's text value as the dimension's own value."""
    if name == "managers":
        return int(value) if value else None
    if name == "has_parent":
        return value == "1"
    return value or None


async def _connection_types(
    info: Info, filter: ClientFilter | None, search: str | None, scope: FilterScope
) -> list[tuple[Any, int]]:
    """Per connection type, the clients the other conditions select with one (in the
    filter's connection status, if any)."""
    conditions = client_conditions(without(filter, CONNECTION_FIELDS), search, scope)
    statement = select(ClientConnection.type, func.count()).group_by(ClientConnection.type)
    if conditions:
        selected = select(CLIENTS.c.id).where(*conditions)
        statement = statement.where(ClientConnection.client_id.in_(selected))
    if filter is not None and filter.connection_status is not None:
        statement = statement.where(ClientConnection.status == filter.connection_status)
    return [(v, int(n)) for v, n in await info.context.db.execute(statement)]


@strawberry.type
class FacetQuery:
    @strawberry.field(
        description="Counts for the clients filter panel: how many clients each choice of "
        "each dimension would give, with the rest of the filter as it is. Exact.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def client_facets(
        self,
        info: Info,
        filter: Annotated[
            ClientFilter | None,
            strawberry.argument(description="The list's filter (as `clients` takes it)."),
        ] = None,
        search: Annotated[
            str | None, strawberry.argument(description="The list's search text.")
        ] = None,
    ) -> ClientFacets:
        return await client_facets(info, filter, search)


check_arguments("Query", "client_facets", filter_problems)
