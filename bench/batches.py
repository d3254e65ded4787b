"""Payment batches (issue 20, point 4): `creditAddBatch` throughput into 1,000 clients, as a
bank-statement import sends it: batches of 1,000 payments (one per client, in a shuffled
order), each with its own idempotency key, through the application (in process, over httpx's
ASGI transport: the client's JSON work is on the same cores), one batch after another and
`--parallel` at once. Then every batch is sent again (a replay: nothing applied twice), and the
ledger is checked (balances equal their entries' sums).

    .venv/bin/python -m bench.batches --database-url postgresql+asyncpg://…/bench_batch \\
        [--clients 1000] [--batches 20] [--size 1000] [--parallel 2]

The database is created, migrated and seeded with demo data when it has fewer clients
(bench/harness.py). Goal: at least 2,000 payments a second on PostgreSQL.
"""

import argparse
import asyncio
import random
import time
from typing import Any

import httpx
from sqlalchemy import select

from bench.harness import (
    bench_token,
    last_entry_and_clients,
    ledger_check,
    prepare_database,
    say,
    vacuum,
)
from clientdesk.settings import Settings
from db.models import Client
from db.session import create_engine
from gql.app import create_app
from gql.node import to_global_id

BATCH = """
mutation($input: CreditAddBatchInput!) {
  creditAddBatch(input: $input) {
    results { entry { id } replayed userErrors { code } }
    userErrors { code }
  }
}
"""


def batch(clients: list[int], size: int, run: str, number: int) -> list[dict[str, Any]]:
    """`size` payments of 1 (a whole unit: right in every currency) to the clients, shuffled."""
    chosen = [clients[n % len(clients)] for n in range(size)]
    random.Random(number).shuffle(chosen)
    return [
        {
            "clientId": to_global_id("Client", client_id),
            "amount": "1",
            "paymentMethod": "BANK_TRANSFER",
            "paymentReference": f"ST-{run}-{number}-{n}",
            "idempotencyKey": f"bench-{run}-{number}-{n}",
        }
        for n, client_id in enumerate(chosen)
    ]


async def send(http: httpx.AsyncClient, token: str, payments: list[dict[str, Any]]) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": BATCH, "variables": {"input": {"payments": payments}}},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["creditAddBatch"]


async def client_ids(url: str, count: int) -> list[int]:
    """The first `count` clients (any status: a payment is taken whatever the client's)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            ids = list(await connection.scalars(select(Client.id).order_by(Client.id).limit(count)))
    finally:
        await engine.dispose()
    assert len(ids) == count, f"only {len(ids)} clients"
    return ids


async def measure(url: str, token: str, args: argparse.Namespace) -> list[str]:
    since, _ = await last_entry_and_clients(url, 0)
    clients = await client_ids(url, args.clients)
    run = str(time.time_ns())
    batches = [batch(clients, args.size, run, n) for n in range(args.batches)]
    app = create_app(Settings(database_url=url, rate_limit_points_per_minute=0))
    transport = httpx.ASGITransport(app=app)
    lines = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as http,
    ):
        await send(http, token, batch(clients, args.size, run, -1))  # warm: shapes compiled
        for label, parallel in (("one at a time", 1), (f"{args.parallel} at once", args.parallel)):
            todo = batches[: args.batches // 2] if parallel == 1 else batches[args.batches // 2 :]
            queue = list(todo)
            took: list[float] = []

            async def worker(queue: list[list[dict[str, Any]]], took: list[float]) -> None:
                while queue:
                    payments = queue.pop()
                    started = time.perf_counter()
                    answer = await send(http, token, payments)
                    took.append(time.perf_counter() - started)
                    assert answer["userErrors"] == [], answer["userErrors"]
                    refused = [r for r in answer["results"] if r["userErrors"]]
                    assert not refused, refused[:3]

            started = time.perf_counter()
            await asyncio.gather(*(worker(queue, took) for _ in range(parallel)))
            elapsed = time.perf_counter() - started
            payments = sum(len(b) for b in todo)
            rate = payments / elapsed
            took.sort()
            say(f"{label}: {payments:,} payments in {elapsed:.2f} s = {rate:,.0f}/s")
            lines.append(
                f"| creditAddBatch, {label} | {len(todo)} x {args.size:,} | {rate:,.0f} | "
                f"{took[len(took) // 2]:.2f} | {took[-1]:.2f} |"
            )
        started = time.perf_counter()
        for payments in batches:
            answer = await send(http, token, payments)
            assert all(r["replayed"] for r in answer["results"]), "a replay applied a payment"
        elapsed = time.perf_counter() - started
        replayed = sum(len(b) for b in batches)
        say(f"replayed: {replayed:,} payments in {elapsed:.2f} s = {replayed / elapsed:,.0f}/s")
        lines.append(
            f"| creditAddBatch replayed | {len(batches)} x {args.size:,} | "
            f"{replayed / elapsed:,.0f} | | |"
        )
    written, wrong = await ledger_check(url, since)
    expected = (args.batches + 1) * args.size
    say(f"ledger: {written:,} entries written (expected {expected:,}), {wrong} balances wrong")
    assert written == expected
    assert wrong == 0
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=20, help="half sequential, half parallel")
    parser.add_argument("--size", type=int, default=1_000, help="payments per batch")
    parser.add_argument("--parallel", type=int, default=2, help="batches in flight at once")
    args = parser.parse_args()
    prepare_database(args.database_url, args.clients)
    token = bench_token(args.database_url)
    # as autovacuum keeps a live database (off on the bench machine): the last run's dead
    # rows gone (each payment leaves a dead version of its client's row), statistics fresh
    asyncio.run(vacuum(args.database_url))
    lines = [
        f"| payment batches into {args.clients:,} clients | batches | payments/s | "
        "median s per batch | slowest s |",
        "|---|---:|---:|---:|---:|",
        *asyncio.run(measure(args.database_url, token, args)),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
