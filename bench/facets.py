"""How long `clientFacets` takes: unfiltered, with one filter on each dimension, and with a
filter the tallies cannot answer; each request through the whole application (in process,
one at a time), on a database seeded by bench/run.py or `clientdesk seed-demo`.

    .venv/bin/python -m bench.facets --database-url postgresql+asyncpg://…/clientdesk_bench

Prints markdown tables, for the six client dimensions and for connection types (counted in
the connections, not tallied): median and 95th percentile of the request's time, in ms.
"""

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx

from bench.harness import bench_token
from clientdesk.settings import Settings
from gql.app import create_app

FACETS = """
query($filter: ClientFilter, $search: String) {
  clientFacets(filter: $filter, search: $search) {
    statuses { status count } countries { country count } currencies { currency count }
    managers { manager { name } count } blocked { value count } hasParent { value count }
  }
}
"""
CONNECTIONS = """
query($filter: ClientFilter, $search: String) {
  clientFacets(filter: $filter, search: $search) { connectionTypes { type count } }
}
"""
CASES: dict[str, dict[str, Any]] = {
    "unfiltered": {},
    "statuses: ACTIVE": {"filter": {"statuses": ["ACTIVE"]}},
    "countries: DE": {"filter": {"countries": ["DE"]}},
    "currencies: EUR": {"filter": {"currencies": ["EUR"]}},
    "ownership: UNASSIGNED": {"filter": {"ownership": ["UNASSIGNED"]}},
    "blocked: true": {"filter": {"blocked": True}},
    "hasParent: true": {"filter": {"hasParent": True}},
    "connectionTypes: SMPP": {"filter": {"connectionTypes": ["SMPP"]}},
    "search: anna": {"search": "anna"},
}


async def measure(url: str, token: str, rounds: int, query: str) -> list[tuple[str, float, float]]:
    app = create_app(Settings(database_url=url, rate_limit_points_per_minute=0))
    results = []
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as http,
    ):
        headers = {"Authorization": f"Bearer {token}"}
        for label, variables in CASES.items():
            times = []
            for n in range(rounds + 1):
                started = time.perf_counter()
                response = await http.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
                elapsed = (time.perf_counter() - started) * 1000
                body = response.json()
                assert "errors" not in body, body
                if n:  # the first warms the caches
                    times.append(elapsed)
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            results.append((label, statistics.median(times), p95))
    return results


def facet_tables(database_url: str, token: str, rounds: int) -> list[str]:
    """The markdown tables: the six client dimensions, and connection types."""
    lines: list[str] = []
    for title, query in (("six client dimensions", FACETS), ("connection types", CONNECTIONS)):
        results = asyncio.run(measure(database_url, token, rounds, query))
        lines += ["", f"| clientFacets, {title} | median ms | p95 ms |", "|---|---:|---:|"]
        lines += [f"| {label} | {median:.1f} | {p95:.1f} |" for label, median, p95 in results]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    token = bench_token(args.database_url)
    print("\n".join(facet_tables(args.database_url, token, args.rounds)))


if __name__ == "__main__":
    main()
