"""Does a page deep in the clients list cost what the first page costs? (PostgreSQL)

For each sort order, builds the SQL the API runs (the same builders) for page 1 and for the
page that starts DEPTH rows in (by cursor), runs EXPLAIN (ANALYZE, BUFFERS) on both, and prints
a markdown table: execution time, buffers touched, and whether the plan reads only through
indexes (no sequential scan).

    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/clientdesk_bench \\
        .venv/bin/python -m bench.explain_pages [--depth 500000] [--size 50] [--plans]

Finding the deep position uses OFFSET once, here, only to pick the cursor a client would hold.
"""

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from clientdesk.settings import get_settings
from db.queries import select_clients
from db.session import create_engine
from gql.clients.sorters import ClientOrder, ClientOrderField, OrderDirection, client_ordering
from gql.pagination import PageRequest, Position, page_query

F, D = ClientOrderField, OrderDirection
ORDERS: list[list[tuple[ClientOrderField, OrderDirection]]] = [
    [(F.CREATED_AT, D.DESC)],  # the default: newest first
    [(F.CREATED_AT, D.ASC)],
    [(F.LOGIN, D.ASC)],
    [(F.BALANCE, D.DESC)],
    [(F.CURRENCY, D.ASC)],
    [(F.STATUS, D.DESC)],
    [(F.NAME, D.ASC)],
    [(F.NAME, D.DESC)],
    [(F.EMAIL, D.ASC)],
    [(F.COUNTRY, D.DESC)],
    [(F.LAST_ACTIVITY_AT, D.DESC)],
    [(F.LAST_ACTIVITY_AT, D.ASC)],
    [(F.VALID_TILL, D.ASC)],
    [(F.VALID_TILL, D.DESC)],
    [(F.PHONE, D.ASC)],
    [(F.PHONE, D.DESC)],
    [(F.MANAGER, D.ASC)],
    [(F.MANAGER, D.DESC)],
    [(F.BLOCKED, D.ASC)],
    [(F.BLOCKED, D.DESC)],
    [(F.CREDIT_LIMIT, D.DESC)],
    [(F.CHATS, D.DESC)],
    [(F.SUPPORT_REQUESTS, D.ASC)],
    [(F.UPDATED_AT, D.DESC)],
    [(F.BALANCE, D.ASC)],
    [(F.MANAGER, D.ASC), (F.NAME, D.ASC)],
    [(F.MANAGER, D.DESC), (F.NAME, D.ASC)],
    [(F.BLOCKED, D.DESC), (F.LOGIN, D.DESC)],
    [(F.STATUS, D.ASC), (F.LAST_ACTIVITY_AT, D.DESC)],
    [(F.CREATED_AT, D.DESC), (F.NAME, D.ASC)],
    [(F.CREDIT_LIMIT, D.DESC), (F.LOGIN, D.ASC)],
    [(F.COUNTRY, D.ASC), (F.BALANCE, D.DESC)],
    [(F.COUNTRY, D.ASC), (F.NAME, D.ASC)],
    [(F.CURRENCY, D.DESC), (F.CREATED_AT, D.DESC)],
    [(F.CHATS, D.DESC), (F.LOGIN, D.ASC)],
    [(F.CAN_LOGIN, D.ASC)],
    [(F.CAN_LOGIN, D.DESC)],
    [(F.CAN_LOGIN, D.DESC), (F.NAME, D.ASC)],
    [(F.COUNTRY, D.ASC), (F.CURRENCY, D.DESC)],
    [(F.CURRENCY, D.ASC), (F.COUNTRY, D.DESC)],
    [(F.BALANCE, D.ASC), (F.LOGIN, D.DESC)],
    [(F.COUNTRY, D.ASC), (F.CAN_LOGIN, D.DESC)],
    [(F.CAN_LOGIN, D.ASC), (F.STATUS, D.DESC)],
    [(F.VALID_TILL, D.ASC), (F.LOGIN, D.DESC)],
    [(F.LAST_ACTIVITY_AT, D.ASC), (F.UPDATED_AT, D.DESC)],
]
# How asyncpg writes the block end's sentinels (db.models.FAR_PAST, FAR_FUTURE); as literals,
# SQLAlchemy spells them as ordinary moments, which PostgreSQL's infinities are not.
INFINITIES = {
    "'0001-01-01 00:00:00+00:00'": "'-infinity'",
    "'9999-12-31 23:59:59.999999+00:00'": "'infinity'",
}


def sql(statement: Any) -> str:
    compiled = statement.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    written = str(compiled)
    for moment, infinity in INFINITIES.items():
        written = written.replace(moment, infinity)
    return written


async def explain(connection: AsyncConnection, statement: Any) -> dict[str, Any]:
    query = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql(statement)}"
    plan = (await connection.execute(text(query))).scalar_one()[0]
    return plan if isinstance(plan, dict) else json.loads(plan)


def node_types(plan: dict[str, Any]) -> list[str]:
    """The plan's node types, but the read of Billing Mode's one-row settings table (which
    every clients statement looks at, and which is too small for an index to pay)."""
    settings = plan["Node Type"] == "Seq Scan" and plan.get("Relation Name") == "system_settings"
    found = [] if settings else [plan["Node Type"]]
    for child in plan.get("Plans", []):
        found += node_types(child)
    return found


def describe(plan: dict[str, Any]) -> tuple[float, int, bool]:
    top = plan["Plan"]
    kinds = node_types(top)
    # A top-N Sort over a few merged index branches (UNION ALL) is fine; a sequential scan
    # is what makes a page cost more the deeper it is.
    through_indexes = any(k.startswith("Index") for k in kinds) and "Seq Scan" not in kinds
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    return plan["Execution Time"], buffers, through_indexes


def every_pair() -> list[list[tuple[ClientOrderField, OrderDirection]]]:
    """Every two different fields, the first ascending and the second descending: orders
    nobody named, pairs of correlated columns (a country and its currency) among them."""
    return [[(a, D.ASC), (b, D.DESC)] for a in F for b in F if a is not b]


async def plans_table(
    database_url: str,
    depth: int,
    size: int,
    *,
    show_plans: bool = False,
    orders: list[list[tuple[ClientOrderField, OrderDirection]]] | None = None,
    slower_than: float = 0.0,
) -> list[str]:
    """The markdown table: page 1, the page `depth` rows in, and the page before that one
    (walking backwards from the same cursor), for each order; with `slower_than`, only the
    orders where one of them takes longer (ms)."""
    engine = create_engine(database_url)
    rows = []
    try:
        async with engine.connect() as connection:
            total = (await connection.execute(text("SELECT count(*) FROM clients"))).scalar_one()
            for spec in orders or ORDERS:
                ordering = client_ordering(
                    [ClientOrder(field=f, direction=d) for f, d in spec], now=datetime.now(UTC)
                )
                clients = select_clients().add_columns(*ordering.computed_columns)
                first = page_query(clients, ordering, PageRequest(size, False, None, None))
                columns = [k.column for k in ordering.keys] + [ordering.tiebreaker]
                locate = select(*columns).order_by(*ordering.order_by()).offset(depth - 1).limit(1)
                found = (await connection.execute(locate)).one()
                after = Position(tuple(found[:-1]), found[-1])
                deep = page_query(clients, ordering, PageRequest(size, False, after, None))
                back = page_query(clients, ordering, PageRequest(size, True, None, after))
                for _ in range(2):  # the second run measures them with a warm cache
                    plan_first = await explain(connection, first)
                    plan_deep = await explain(connection, deep)
                    plan_back = await explain(connection, back)
                label = ", ".join(f"{f.value} {d.value}" for f, d in spec)
                measured = [describe(plan) for plan in (plan_first, plan_deep, plan_back)]
                if max(m[0] for m in measured) >= slower_than:
                    rows.append((label, *(value for m in measured for value in m)))
                if show_plans:
                    print(f"-- {label}, page 1:\n{sql(first)}\n\n-- deep page:\n{sql(deep)}\n")
    finally:
        await engine.dispose()
    lines = [
        f"Keyset pages: {total:,} clients, {size} rows a page, the deep page {depth:,} rows in "
        "(EXPLAIN ANALYZE of the SQL the API runs, warm cache):",
        "",
        "| orderBy | page 1 ms | buffers | indexes only | deep ms | buffers | indexes only "
        "| deep, backwards ms | buffers | indexes only |",
        "|---|---:|---:|:---:|---:|---:|:---:|---:|---:|:---:|",
    ]
    for label, *cells in rows:
        written = [
            f"{cell:.3f}"
            if isinstance(cell, float)
            else ("yes" if cell else "NO")
            if isinstance(cell, bool)
            else str(cell)
            for cell in cells
        ]
        lines.append(f"| {label} | {' | '.join(written)} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--depth", type=int, default=500_000)
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--plans", action="store_true", help="print the SQL too")
    parser.add_argument(
        "--pairs", action="store_true", help="every two fields instead of the named orders"
    )
    parser.add_argument(
        "--slower-than", type=float, default=0.0, help="list only orders with a page over this (ms)"
    )
    arguments = parser.parse_args()
    url = get_settings().database_url
    lines = asyncio.run(
        plans_table(
            url,
            arguments.depth,
            arguments.size,
            show_plans=arguments.plans,
            orders=every_pair() if arguments.pairs else None,
            slower_than=arguments.slower_than,
        )
    )
    print("\n".join(lines))
