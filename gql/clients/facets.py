"""Facet counts for the clients filter panel: for each value of a dimension, how many clients
the filter and search select with the filter's own condition on that dimension left out (as
shops count), so each choice says how many clients it gives and no value without clients is
offered.

Exact, and each dimension counted only when asked for. Where the rest of the filter is on
status and at most one other tallied dimension (manager, country, currency, sub-account, one
connection type), without a search, a count is a sum of a few rows the triggers keep
(db.models.ClientTally, ClientPairTally); a `blocked` condition subtracts (or keeps) the
blocked clients, few and counted through the index on the block's end. Otherwise the clients
the other conditions select are counted, every dimension asked for over the same rows in one
statement (GroupedCounts). Connection types come from the bits each client's row keeps, but
in one `connectionStatus`: then they are counted in the connections.
"""

import asyncio
import dataclasses
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, func, select, tuple_

from db.enums import ClientStatus, ConnectionType, Scope, TallyDimension
from db.models import CONNECTION_BITS, ClientConnection, ClientPairTally, ClientTally
from db.models import Client as ClientModel
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
from gql.loaders import STAFF_BY_ID, selected_names
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
    # in the rows: the bits of the client's connection types (CONNECTION_BITS), then per type
    "connection_types": Dimension(
        ("connection_types", "connection_status", "connection_match"),
        CLIENTS.c.connection_types,
        TallyDimension.CONNECTION,
    ),
}
CONNECTION_FIELDS = DIMENSIONS["connection_types"].fields
# dimensions of a few values each (at most 5 x 2 x 2 x 16 combinations): counted together
FEW_VALUES = frozenset({"statuses", "has_parent", "blocked", "connection_types"})
Counts = dict[Any, int]


def without(filter: ClientFilter | None, names: Iterable[str]) -> ClientFilter | None:
    """The filter with these fields left out."""
    if filter is None:
        return None
    return dataclasses.replace(filter, **dict.fromkeys(names))


class GroupedCounts:
    """Clients per value of a dimension among those a filter and the search select, counted
    in the rows. The dimensions a request asks for over the same filter are counted in one
    statement, a pass over the matching rows with one GROUP BY per dimension (GROUPING SETS,
    on PostgreSQL; SQLite runs one statement per dimension). Besides DIMENSIONS' names,
    `blocked`: blocked now or not."""

    def __init__(self, db: Any, search: str | None, scope: FilterScope) -> None:
        self.db, self.search, self.scope = db, search, scope
        self.filters: dict[str, ClientFilter | None] = {}
        self.loader: DataLoader[tuple[str, str], Counts] = DataLoader(self._load)

    def load(self, filter: ClientFilter | None, name: str) -> "asyncio.Future[Counts]":
        """The counts, asked for now (with whatever else is asked for before the next await)."""
        key = repr(filter)  # a filter is a tree of plain values: its repr tells it apart
        self.filters[key] = filter
        return self.loader.load((key, name))

    def value(self, name: str) -> ColumnElement[Any]:
        if name == "blocked":
            return is_blocked(self.scope.now)
        return DIMENSIONS[name].value

    async def _load(self, keys: list[tuple[str, str]]) -> list[Counts]:
        names_by_filter: dict[str, list[str]] = {}
        for key, name in keys:
            names_by_filter.setdefault(key, []).append(name)
        found: dict[tuple[str, str], Counts] = {}
        for key, names in names_by_filter.items():
            conditions = client_conditions(self.filters[key], self.search, self.scope)
            counted = await self._count(conditions, names)
            found.update({(key, name): counts for name, counts in counted.items()})
        return [found[key] for key in keys]

    async def _count(self, conditions: list[Any], names: list[str]) -> dict[str, Counts]:
        # the values in a subquery, so GROUP BY names them (a bound moment repeated in the
        # outer SELECT would be another parameter, which PostgreSQL cannot tell is the same)
        values = select(*(self.value(name).label(f"v{i}") for i, name in enumerate(names)))
        inner = values.select_from(CLIENTS).where(*conditions).subquery()
        columns = [inner.c[f"v{i}"] for i in range(len(names))]
        counted: dict[str, Counts] = {name: {} for name in names}
        if len(names) == 1 or self.db.dialect_name != "postgresql":
            for name, column in zip(names, columns, strict=True):
                rows = await self.db.fetch_all(select(column, func.count()).group_by(column))
                counted[name] = {v: int(n) for v, n in rows}
            return counted
        # the dimensions with a few values share a set (each summed from it here); every
        # other set costs a hash table per row
        few = [i for i, name in enumerate(names) if name in FEW_VALUES]
        sets = [few] if few else []
        sets += [[i] for i in range(len(names)) if i not in few]
        groupings = [func.grouping(*(columns[i] for i in members)) for members in sets]
        grouped_by = func.grouping_sets(
            *(tuple_(*(columns[i] for i in members)) for members in sets)
        )
        statement = select(*columns, *groupings, func.count()).group_by(grouped_by)
        width = len(names)
        # GROUPING(...) is 0 in the rows of its own set (a NULL there is a value): the row's
        # groupings tell its set, and so which values it counts
        by_groupings = {
            tuple(n == own for n in range(len(sets))): [(i, counted[names[i]]) for i in sets[own]]
            for own in range(len(sets))
        }
        for row in await self.db.fetch_all(statement):
            n = int(row[-1])
            for i, counts in by_groupings[tuple(g == 0 for g in row[width:-1])]:
                value = row[i]
                counts[value] = counts.get(value, 0) + n
        return counted


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
    grouped: strawberry.Private[GroupedCounts]

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
        if "manager" in selected_names(info):  # the managers in one statement (the loader's
            ids = [v for v, _ in entries if v is not None]  # own, not its thousand keys)
            rows = await info.context.db.rows(STAFF_BY_ID, {"keys": ids})
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
        rest = without(self.filter, ("blocked",))
        tally = self._tally_statement(rest, "statuses")
        if tally is None:
            counts = await self.grouped.load(rest, "blocked")
            counts = {True: counts.get(True, 0), False: counts.get(False, 0)}
        else:
            # the blocked are few, and the index on the block's end holds what they are
            # filtered by; the rest are the tallies' total less them
            if self.filter is not None and self.filter.blocked is not None:
                # the other dimensions are counted among the blocked too: with them
                counted = self.grouped.load(
                    dataclasses.replace(rest or ClientFilter(), blocked=True), "statuses"
                )
                total = sum((await self._run_tally(info, tally, "statuses")).values())
                blocked = sum((await counted).values())
            else:
                total = sum((await self._run_tally(info, tally, "statuses")).values())
                conditions = [*client_conditions(rest, self.search, self.scope)]
                conditions.append(is_blocked(self.scope.now))
                statement = select(func.count()).select_from(CLIENTS).where(*conditions)
                blocked = int(await info.context.db.scalar(statement) or 0)
            counts = {True: blocked, False: total - blocked}
        return [BooleanFacet(value=v, count=n) for v, n in _ordered(counts)]

    @strawberry.field(description="By connection type (`connectionTypes`).")
    async def connection_types(self, info: Info) -> list[ConnectionTypeFacet]:
        rest = without(self.filter, CONNECTION_FIELDS)
        status = self.filter.connection_status if self.filter is not None else None
        if status is None:  # the types alone: tallied, or the bits each client's row holds
            counts = await self._counts(info, "connection_types")
            return [
                ConnectionTypeFacet(type=ConnectionType(v), count=n) for v, n in _ordered(counts)
            ]
        # in one status: counted in the connections
        conditions = client_conditions(rest, self.search, self.scope)
        statement = select(ClientConnection.type, func.count()).group_by(ClientConnection.type)
        if conditions:
            selected = select(CLIENTS.c.id).where(*conditions)
            statement = statement.where(ClientConnection.client_id.in_(selected))
        statement = statement.where(ClientConnection.status == status)
        counts = {v: int(n) for v, n in await info.context.db.fetch_all(statement)}
        return [ConnectionTypeFacet(type=ConnectionType(v), count=n) for v, n in _ordered(counts)]

    async def _counts(self, info: Info, name: str) -> Counts:
        """Clients per value of a dimension, its own condition left out: from the tallies
        where they can tell (less the blocked, or only them, for a `blocked` filter), else
        counted in the rows."""
        rest = without(self.filter, DIMENSIONS[name].fields)
        blocked = rest.blocked if rest is not None else None
        unblocked = without(rest, ("blocked",))
        tally = self._tally_statement(unblocked, name)
        # what is counted in the rows is asked for before anything is awaited, so the
        # dimensions over one filter share a statement (GroupedCounts)
        if tally is None or blocked:
            return await self._in_rows(rest, name)
        if blocked is None:
            return await self._run_tally(info, tally, name)
        among_blocked = self._in_rows(  # unblocked: the tallies less the blocked
            dataclasses.replace(unblocked or ClientFilter(), blocked=True), name
        )
        tallied = await self._run_tally(info, tally, name)
        less = await among_blocked
        return {v: n - less.get(v, 0) for v, n in tallied.items()}

    def _in_rows(self, filter: ClientFilter | None, name: str) -> Awaitable[Counts]:
        """Clients per value of the dimension `name` among those `filter` selects, counted in
        the rows (connection types from their bits: a client counts in each of its types).
        Asked for at once; the counts come when awaited."""
        asked = self.grouped.load(filter, name)
        if name != "connection_types":
            return asked

        async def by_type() -> Counts:
            counts = await asked
            return {
                kind: sum(n for bits, n in counts.items() if bits & bit)
                for kind, bit in CONNECTION_BITS.items()
            }

        return by_type()

    async def _run_tally(self, info: Info, statement: Any, name: str) -> Counts:
        own = DIMENSIONS[name].tally
        counts: Counts = {}
        for value, n in await info.context.db.fetch_all(statement):
            key = value if own is None else _tally_value(own, value)
            counts[key] = counts.get(key, 0) + int(n)
        return counts

    def _tally_statement(self, filter: ClientFilter | None, name: str) -> Any:
        """The sum of tallies that counts the dimension `name` among the clients `filter`
        selects (no blocked condition), or None when the tallies cannot tell."""
        given = tallied_fields(filter, self.search)
        if given is None:
            return None
        statuses = given.pop("statuses", None)
        others = {TALLIED[field][0] for field in given}
        if len(others) > 1:
            return None
        own = DIMENSIONS[name].tally
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
        return statement.group_by(grouped_by)


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
        grouped = GroupedCounts(info.context.db, search, scope)
        return ClientFacets(filter=filter, search=search, scope=scope, grouped=grouped)


check_arguments("Query", "client_facets", filter_problems)
