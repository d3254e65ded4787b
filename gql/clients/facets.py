"""Facet counts for the clients filter panel: for each value of a dimension, how many clients
the filter and search select with the filter's own condition on that dimension left out (as
shops count), so each choice says how many clients it gives and no value without clients is
offered.

Exact, and each dimension counted only when asked for. Where the rest of the filter is on
status and at most one other tallied dimension (manager, country, currency, sub-account),
without a search, a count is a sum of a few rows the triggers keep (db.models.ClientTally,
ClientPairTally); a `blocked` condition subtracts (or keeps) the blocked clients, few and
counted through the index on the block's end. Otherwise one GROUP BY over the clients the
other conditions select. Connection types are counted in the connections.
"""

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, func, select

from db.enums import ClientStatus, ConnectionType, Scope, TallyDimension
from db.models import Client as ClientModel
from db.models import ClientConnection, ClientPairTally, ClientTally
from db.models import StaffUser as StaffModel
from db.queries import select_staff
from gql.arguments import check_arguments
from gql.clients.filters import (
    TALLIED,
    ClientFilter,
    FilterScope,
    client_conditions,
    filter_problems,
    is_blocked,
    tallied_fields,
)
from gql.context import Info
from gql.loaders import selected_names
from gql.permissions import HasScope
from gql.staff.types import StaffUser

CLIENTS = ClientModel.__table__
STAFF = StaffModel.__table__


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
    manager: StaffUser | None = strawberry.field(
        description="The manager; null for clients without one (UNASSIGNED)."
    )
    count: int = strawberry.field(description="Clients the filter selects with this manager.")


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


# Each client dimension: the filter fields it leaves out, its value in SQL, and its tally.
@dataclass(frozen=True, slots=True)
class Dimension:
    fields: tuple[str, ...]
    value: ColumnElement[Any]
    tally: TallyDimension | None  # None: status, which every tally row has


DIMENSIONS: dict[str, Dimension] = {
    "statuses": Dimension(("statuses",), CLIENTS.c.status, None),
    "countries": Dimension(("countries",), CLIENTS.c.country, TallyDimension.COUNTRY),
    "currencies": Dimension(("currencies",), CLIENTS.c.currency, TallyDimension.CURRENCY),
    "managers": Dimension(
        ("manager_ids", "ownership"), CLIENTS.c.manager_id, TallyDimension.MANAGER
    ),
    "has_parent": Dimension(
        ("has_parent",), CLIENTS.c.parent_id.is_not(None), TallyDimension.SUB_ACCOUNT
    ),
}
CONNECTION_FIELDS = ("connection_types", "connection_status", "connection_match")
Counts = dict[Any, int]


def without(filter: ClientFilter | None, names: Iterable[str]) -> ClientFilter | None:
    """The filter with these fields left out."""
    if filter is None:
        return None
    return dataclasses.replace(filter, **dict.fromkeys(names))


@strawberry.type(
    description="Counts for the filter panel: per value of each dimension, the clients the "
    "filter and search select with the filter's own condition on that dimension left out. "
    "Values without clients are left out; most clients first. Each dimension is counted "
    "only if asked for. For the country and currency choices of a filter panel (the create "
    "form offers every code: `countries`, `currencies`)."
)
class ClientFacets:
    filter: strawberry.Private[ClientFilter | None]
    search: strawberry.Private[str | None]
    scope: strawberry.Private[FilterScope]

    @strawberry.field(description="By status (`statuses`).")
    async def statuses(self, info: Info) -> list[StatusFacet]:
        counts = await self._counts(info, "statuses")
        return [StatusFacet(status=ClientStatus(v), count=n) for v, n in _ordered(counts)]

    @strawberry.field(
        description="By country (`countries`); clients without a country are not counted."
    )
    async def countries(self, info: Info) -> list[CountryFacet]:
        counts = await self._counts(info, "countries")
        return [CountryFacet(country=v, count=n) for v, n in _ordered(counts) if v]

    @strawberry.field(description="By currency (`currencies`).")
    async def currencies(self, info: Info) -> list[CurrencyFacet]:
        counts = await self._counts(info, "currencies")
        return [CurrencyFacet(currency=v, count=n) for v, n in _ordered(counts)]

    @strawberry.field(
        description="By manager (`managerIds` and `ownership`), clients without one as null."
    )
    async def managers(self, info: Info) -> list[ManagerFacet]:
        entries = _ordered(await self._counts(info, "managers"), keep_none=True)
        staff: dict[Any, StaffUser | None] = {None: None}
        if "manager" in selected_names(info):  # the managers in one statement, not a loader's
            ids = [v for v, _ in entries if v is not None]  # thousand keys
            rows = await info.context.db.rows(select_staff().where(STAFF.c.id.in_(ids)))
            staff.update({row.id: StaffUser.from_row(row) for row in rows})
        else:
            staff.update({v: None for v, _ in entries})
        return [ManagerFacet(manager=staff[v], count=n) for v, n in entries if v in staff]

    @strawberry.field(
        description="Sub-accounts (true) and top-level clients (false) (`hasParent`)."
    )
    async def has_parent(self, info: Info) -> list[BooleanFacet]:
        counts = await self._counts(info, "has_parent")
        return [BooleanFacet(value=bool(v), count=n) for v, n in _ordered(counts)]

    @strawberry.field(description="Blocked now or not (`blocked`).")
    async def blocked(self, info: Info) -> list[BooleanFacet]:
        db, scope = info.context.db, self.scope
        rest = without(self.filter, ("blocked",))
        conditions = client_conditions(rest, self.search, scope)
        # the blocked are few, and the index on the block's end holds what they are filtered by
        counted = select(func.count()).select_from(CLIENTS).where(*conditions)
        blocked = int(await db.scalar(counted.where(is_blocked(scope.now))) or 0)
        tallied = await self._tallied(info, rest, "statuses")
        total = sum(tallied.values()) if tallied is not None else int(await db.scalar(counted))
        counts = {True: blocked, False: total - blocked}
        return [BooleanFacet(value=v, count=n) for v, n in _ordered(counts)]

    @strawberry.field(description="By connection type (`connectionTypes`).")
    async def connection_types(self, info: Info) -> list[ConnectionTypeFacet]:
        rest = without(self.filter, CONNECTION_FIELDS)
        status = self.filter.connection_status if self.filter is not None else None
        if status is None and (rest is None or rest.blocked is None):
            tallied = await self._tallied(info, rest, "connection_types")
            if tallied is not None:
                return [
                    ConnectionTypeFacet(type=ConnectionType(v), count=n)
                    for v, n in _ordered(tallied)
                ]
        conditions = client_conditions(rest, self.search, self.scope)
        statement = select(ClientConnection.type, func.count()).group_by(ClientConnection.type)
        if conditions:
            selected = select(CLIENTS.c.id).where(*conditions)
            statement = statement.where(ClientConnection.client_id.in_(selected))
        if self.filter is not None and self.filter.connection_status is not None:
            statement = statement.where(ClientConnection.status == self.filter.connection_status)
        counts = {v: int(n) for v, n in await info.context.db.execute(statement)}
        return [ConnectionTypeFacet(type=ConnectionType(v), count=n) for v, n in _ordered(counts)]

    async def _counts(self, info: Info, name: str) -> Counts:
        """Clients per value of a dimension, its own condition left out: from the tallies
        where they can tell (less the blocked, or only them, for a `blocked` filter), else
        counted in the rows."""
        dimension = DIMENSIONS[name]
        rest = without(self.filter, dimension.fields)
        blocked = rest.blocked if rest is not None else None
        unblocked = without(rest, ("blocked",))
        tallied = await self._tallied(info, unblocked, name)
        if tallied is None:
            return await self._grouped(info, rest, dimension)
        if blocked is None:
            return tallied
        among_blocked = await self._grouped(
            info, dataclasses.replace(unblocked or ClientFilter(), blocked=True), dimension
        )
        if blocked:
            return among_blocked
        return {v: n - among_blocked.get(v, 0) for v, n in tallied.items()}

    async def _grouped(
        self, info: Info, filter: ClientFilter | None, dimension: Dimension
    ) -> Counts:
        """Clients per value of `dimension` among those `filter` and the search select."""
        conditions = client_conditions(filter, self.search, self.scope)
        value = dimension.value
        statement = select(value, func.count()).select_from(CLIENTS).where(*conditions)
        found = await info.context.db.execute(statement.group_by(value))
        return {v: int(n) for v, n in found}

    async def _tallied(self, info: Info, filter: ClientFilter | None, name: str) -> Counts | None:
        """Clients per value of the dimension `name` among those `filter` selects (no blocked
        condition), from the tallies; None when they cannot tell."""
        given = tallied_fields(filter, self.search)
        if given is None:
            return None
        statuses = given.pop("statuses", None)
        others = {TALLIED[field][0] for field in given}
        if len(others) > 1:
            return None
        own = TallyDimension.CONNECTION if name == "connection_types" else DIMENSIONS[name].tally
        statement: Any
        tally: Any
        if not others:
            tally = ClientTally
            if own is None:
                statement = select(tally.status, func.sum(tally.n)).where(
                    tally.dimension == TallyDimension.ALL
                )
                grouped_by: Any = tally.status
            else:
                statement = select(tally.value, func.sum(tally.n)).where(tally.dimension == own)
                grouped_by = tally.value
        elif own is None:  # statuses, among one other dimension's values
            tally = ClientTally
            statement = select(tally.status, func.sum(tally.n)).where(
                tally.dimension == others.pop(),
                *(TALLIED[f][1](v, self.scope, tally.value) for f, v in given.items()),
            )
            grouped_by = tally.status
        else:
            pair = ClientPairTally
            statement = select(pair.value, func.sum(pair.n)).where(
                pair.by_dimension == others.pop(),
                pair.dimension == own,
                *(TALLIED[f][1](v, self.scope, pair.by_value) for f, v in given.items()),
            )
            grouped_by = pair.value
            tally = pair
        if statuses:
            statement = statement.where(tally.status.in_(statuses))
        found = await info.context.db.execute(statement.group_by(grouped_by))
        counts: Counts = {}
        for value, n in found:
            key = value if own is None else _tally_value(own, value)
            counts[key] = counts.get(key, 0) + int(n)
        return counts


def _ordered(counts: Counts, *, keep_none: bool = False) -> list[tuple[Any, int]]:
    """Values with clients, most first (ties by value)."""
    kept = [(v, n) for v, n in counts.items() if n > 0 and (v is not None or keep_none)]
    return sorted(kept, key=lambda item: (-item[1], str(item[0])))


def _tally_value(dimension: TallyDimension, value: str) -> Any:
    """A tally's text value as the dimension's own value."""
    if dimension is TallyDimension.MANAGER:
        return int(value) if value else None
    if dimension is TallyDimension.SUB_ACCOUNT:
        return value == "1"
    return value or None


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
        viewer = info.context.viewer
        assert viewer is not None  # the field requires a scope
        scope = FilterScope(viewer_id=viewer.staff_id, now=info.context.now)
        return ClientFacets(filter=filter, search=search, scope=scope)


check_arguments("Query", "client_facets", filter_problems)
