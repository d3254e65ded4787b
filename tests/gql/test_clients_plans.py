"""Every single-column sort reads the clients through an index, on page 1 and deep in the
list: the plans, not timings, are what tests can assert (timings are in bench/)."""

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries import select_clients
from gql.clients.sorters import ClientOrder, ClientOrderField, OrderDirection, client_ordering
from gql.pagination import PageRequest, Position, page_query
from tests.gql.conftest import SEEDED_AT, Listing
from tests.gql.test_clients_list import can_login, ordered


def node_types(plan: dict[str, Any]) -> list[str]:
    return [plan["Node Type"], *(t for child in plan.get("Plans", []) for t in node_types(child))]


async def plan_of(connection: AsyncConnection, statement: Any) -> list[str]:
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    if connection.dialect.name == "postgresql":
        # The test table is small enough that scanning and sorting would win; forbid both to
        # see whether an index *can* deliver the order (without one PostgreSQL still sorts).
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await connection.execute(text(f"SET LOCAL {setting} = off"))
        plan = (await connection.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}"))).scalar_one()
        plan = plan if isinstance(plan, list) else json.loads(plan)
        return node_types(plan[0]["Plan"])
    rows = await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
    return [row[3] for row in rows]


def reads_through_indexes(plan: list[str], dialect: str, *, by_id: bool = False) -> bool:
    """Every read of the table uses an index; a sort may only merge UNION ALL branches
    (a few rows each), never sort the table. `by_id`: branches ordered by the id alone,
    which SQLite reads in rowid order (a "SCAN" that stops at the LIMIT)."""
    if dialect == "postgresql":
        scans = [step for step in plan if "Scan" in step]
        # branches merged after their LIMITs: sorting their few rows is fine
        merged = by_id and "Append" in plan
        return (
            bool(scans)
            and all(step.startswith("Index") for step in scans)
            and ("Sort" not in plan or merged)
        )
    reads = [step for step in plan if step.startswith(("SCAN clients", "SEARCH clients"))]
    merged = any(step.startswith(("MERGE", "COMPOUND")) for step in plan)
    sorts = any("TEMP B-TREE" in step for step in plan)
    in_order = [step for step in reads if "USING" in step or (by_id and merged)]
    return bool(reads) and in_order == reads and (merged or not sorts)


@pytest.mark.parametrize("direction", list(OrderDirection))
@pytest.mark.parametrize("field", list(ClientOrderField))
async def test_sort_reads_through_an_index_at_any_depth(
    listing: Listing, field: ClientOrderField, direction: OrderDirection
) -> None:
    ordering = client_ordering([ClientOrder(field=field, direction=direction)], now=SEEDED_AT)
    key = ordering.keys[-1]  # BALANCE has currency before it
    by_login = {row["login"]: row for row in listing.clients}
    logins = ordered(listing.clients, [{"field": field.value, "direction": direction.value}])
    # positions mid-list: one with a value and, for optional columns, one on a NULL
    rows = [by_login[login] for login in logins]
    positions = [None, rows[len(rows) // 3]]
    if key.nullable:
        positions.append(next(row for row in rows if row[key.field] is None))
    async with listing.engine.connect() as connection:
        for row in positions:
            after = (
                None
                if row is None
                else Position(
                    tuple(can_login(row) if k.computed else row[k.field] for k in ordering.keys),
                    row["id"],
                )
            )
            for backwards in (False, True):
                page = PageRequest(
                    20, backwards, None if backwards else after, after if backwards else None
                )
                query = select_clients().add_columns(*ordering.computed_columns)
                plan = await plan_of(connection, page_query(query, ordering, page))
                by_id = len(ordering.keys) == 1 and key.computed
                dialect = connection.dialect.name
                assert reads_through_indexes(plan, dialect, by_id=by_id), (row, plan)


def index_conditions(plan: dict[str, Any]) -> list[str]:
    """The index conditions of every index scan in a PostgreSQL plan."""
    own = [plan["Index Cond"]] if "Index Cond" in plan else []
    return [*own, *(c for child in plan.get("Plans", []) for c in index_conditions(child))]


# Mixed directions or a nullable key: the position test is an OR-chain, which alone gives the
# database nothing to seek by; the page must still start its index scan at the position.
MIXED = [
    [("LOGIN", "ASC"), ("CREATED_AT", "DESC")],
    [("CREATED_AT", "DESC"), ("NAME", "ASC")],
    [("CREDIT_LIMIT", "DESC"), ("LOGIN", "ASC")],
    [("STATUS", "ASC"), ("LAST_ACTIVITY_AT", "DESC")],
    [("MANAGER", "ASC"), ("NAME", "DESC")],
    [("VALID_TILL", "DESC"), ("LOGIN", "ASC")],
    [("STATUS", "DESC"), ("CREATED_AT", "ASC")],
    [("BLOCKED", "DESC"), ("LOGIN", "DESC")],
    [("BLOCKED", "ASC"), ("NAME", "ASC")],
]


@pytest.mark.parametrize("keys", MIXED, ids=lambda keys: ",".join(f"{f}:{d}" for f, d in keys))
async def test_a_multi_key_deep_page_seeks_its_first_key(
    listing: Listing, keys: list[tuple[str, str]]
) -> None:
    orders = [ClientOrder(field=ClientOrderField(f), direction=OrderDirection(d)) for f, d in keys]
    ordering = client_ordering(orders, now=SEEDED_AT)
    first = ordering.keys[0]
    specs = [{"field": f, "direction": d} for f, d in keys]
    by_login = {row["login"]: row for row in listing.clients}
    rows = [by_login[login] for login in ordered(listing.clients, specs)]
    # from a position mid-list and, for a nullable first key, from a NULL; both ways
    middle = rows[len(rows) // 3]
    cases = [(middle, True), (middle, False)]
    if first.nullable:
        null = next(row for row in rows if row[first.field] is None)
        cases += [(null, True), (null, False)]
    async with listing.engine.connect() as connection:
        dialect = connection.dialect.name
        for row, backwards in cases:
            await connection.rollback()  # each plan's settings apart
            position = Position(tuple(row[k.field] for k in ordering.keys), row["id"])
            page = PageRequest(
                20, backwards, None if backwards else position, position if backwards else None
            )
            statement = page_query(select_clients(), ordering, page)
            compiled = statement.compile(
                dialect=connection.dialect, compile_kwargs={"literal_binds": True}
            )
            if dialect == "postgresql":
                for setting in ("enable_seqscan", "enable_bitmapscan"):
                    await connection.execute(text(f"SET LOCAL {setting} = off"))
                found = await connection.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}"))
                plan = found.scalar_one()
                plan = plan if isinstance(plan, list) else json.loads(plan)
                conditions = index_conditions(plan[0]["Plan"])
                # the rows sharing the position's first value (or each known value) are a
                # branch seeking the next key; later values seek the first key
                sought = [k.field for k in ordering.keys[:2]]
                assert any(f in c for c in conditions for f in sought), (row, backwards, plan)
            else:  # the page is the rows past the position (SQLite's planner picks its way)
                found = await connection.execute(statement)
                page_logins = [r.login for r in found][:20]
                at = rows.index(row)
                expected = rows[max(0, at - 20) : at][::-1] if backwards else rows[at + 1 : at + 21]
                assert page_logins == [r["login"] for r in expected], (row, backwards)


def has_full_sort(plan: dict[str, Any]) -> bool:
    """A Sort node with a scan of the clients below it and no Append or Limit between them
    (merging branches, or sorting the few rows a branch was limited to, is fine)."""

    def scans_below(node: dict[str, Any]) -> bool:
        if node["Node Type"] in ("Append", "Merge Append", "Limit"):
            return False
        if "Scan" in node["Node Type"] and node.get("Relation Name") == "clients":
            return True
        return any(scans_below(child) for child in node.get("Plans", []))

    if plan["Node Type"] == "Sort" and any(scans_below(c) for c in plan.get("Plans", [])):
        return True
    return any(has_full_sort(child) for child in plan.get("Plans", []))


# Orders whose pages once sorted a whole group of rows (all clients of a country by whether
# they can log in, all never-active clients by when they were changed, a currency's clients
# from its smallest amount): each page now reads branches an index delivers in order.
UNSORTED = [
    [("COUNTRY", "ASC"), ("CAN_LOGIN", "DESC")],
    [("EMAIL", "ASC"), ("CAN_LOGIN", "DESC")],
    [("MANAGER", "DESC"), ("CAN_LOGIN", "ASC")],
    [("VALID_TILL", "ASC"), ("LOGIN", "DESC")],
    [("LAST_ACTIVITY_AT", "ASC"), ("UPDATED_AT", "DESC")],
    [("BALANCE", "ASC"), ("LOGIN", "DESC")],
    [("BALANCE", "DESC"), ("CHATS", "ASC")],
]


@pytest.mark.parametrize("keys", UNSORTED, ids=lambda keys: ",".join(f"{f}:{d}" for f, d in keys))
async def test_a_page_never_sorts_a_whole_group(
    listing: Listing, keys: list[tuple[str, str]]
) -> None:
    orders = [ClientOrder(field=ClientOrderField(f), direction=OrderDirection(d)) for f, d in keys]
    ordering = client_ordering(orders, now=SEEDED_AT)
    specs = [{"field": f, "direction": d} for f, d in keys]
    by_login = {row["login"]: row for row in listing.clients}
    rows = [by_login[login] for login in ordered(listing.clients, specs)]

    def position(row: dict[str, Any]) -> Position:
        values = [can_login(row) if k.computed else row[k.field] for k in ordering.keys]
        return Position(tuple(values), row["id"])

    first = ordering.keys[0]
    starts = [rows[len(rows) // 3], rows[2 * len(rows) // 3]]
    if first.nullable:
        starts.append(next(row for row in rows if row[first.field] is None))
    clients = select_clients().add_columns(*ordering.computed_columns)
    async with listing.engine.connect() as connection:
        dialect = connection.dialect.name
        for row, backwards in [(row, way) for row in [None, *starts] for way in (False, True)]:
            if row is None and backwards:
                continue
            await connection.rollback()  # each plan's settings apart
            at = position(row) if row is not None else None
            page = PageRequest(20, backwards, None if backwards else at, at if backwards else None)
            statement = page_query(clients, ordering, page)
            found = [r.login for r in await connection.execute(statement)][:20]
            index = rows.index(row) if row is not None else -1
            want = rows[max(0, index - 20) : index][::-1] if backwards else rows[index + 1 :][:20]
            assert found == [r["login"] for r in want], (row, backwards)
            if dialect != "postgresql":
                continue  # SQLite's planner picks its own way; the rows are what count
            compiled = statement.compile(
                dialect=connection.dialect, compile_kwargs={"literal_binds": True}
            )
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                await connection.execute(text(f"SET LOCAL {setting} = off"))
            explained = await connection.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}"))
            plan = explained.scalar_one()
            plan = plan if isinstance(plan, list) else json.loads(plan)
            assert not has_full_sort(plan[0]["Plan"]), (keys, row and row["login"], backwards)
            if first.composite and row is not None:  # from the amount, not its currency's start
                conditions = index_conditions(plan[0]["Plan"])
                assert any("balance" in c for c in conditions), (row["login"], backwards)
