"""Two server processes on one PostgreSQL, as replicas behind a load balancer: money mutations
spread over both apply once per idempotency key and keep the balance equal to the ledger, and
a token's rate limit is one budget across both (kept in PostgreSQL, or in Redis)."""

import asyncio
import base64
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Client, CreditEntry, IdempotencyKey
from db.session import create_engine
from tests.conftest import POSTGRES_URL, ScratchDatabases
from tests.servers import CLEAN_EXIT, ServerProcess, seed_admin_and_client, start_server

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_DATABASE_URL)")

POINTS_PER_MINUTE = 600
ADD = """
mutation($input: CreditAddInput!) {
  creditAdd(input: $input) { entry { id } replayed userErrors { code } }
}
"""
# 100 clients with 100 sub-accounts each, at most: 10,100 nodes, 101 points
COSTLY = "{ clients(first: 100) { nodes { subAccounts(first: 100) { nodes { id } } } } }"
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Replicas:
    database_url: str
    servers: list[ServerProcess]
    money_token: str
    limited_token: str
    client_id: int


@pytest.fixture(params=["database", "redis"])
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Replicas]:
    """Two `clientdesk serve` processes over one scratch database, sharing their rate limits
    through PostgreSQL or through Redis."""
    scratch = ScratchDatabases("postgresql", tmp_path)
    url = await scratch.create()
    seeded = await seed_admin_and_client(url, tokens=2)
    environment = {"CLIENTDESK_RATE_LIMIT_POINTS_PER_MINUTE": str(POINTS_PER_MINUTE)}
    if request.param == "redis":
        environment |= {
            "CLIENTDESK_REDIS_URL": REDIS_URL,
            "CLIENTDESK_REDIS_KEY_PREFIX": f"test:{uuid.uuid4().hex}:",
        }
    servers = await asyncio.gather(
        *(asyncio.to_thread(start_server, url, environment) for _ in range(2))
    )
    try:
        yield Replicas(url, list(servers), *seeded.tokens, seeded.client_id)
    finally:
        statuses = await asyncio.gather(*(asyncio.to_thread(server.stop) for server in servers))
        await scratch.drop_all()
    assert set(statuses) <= CLEAN_EXIT
    for server in servers:
        assert server.failures() == [], server.failures()


async def post(
    http: httpx.AsyncClient, server: ServerProcess, token: str, query: str, variables: Any = None
) -> httpx.Response:
    return await http.post(
        server.graphql,
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_money_spread_over_two_processes_applies_once_per_key(replicas: Replicas) -> None:
    # given 25 credits, each sent with its key to both processes at once (a retry that the
    # load balancer sent to the other replica)
    client = base64.b64encode(f"Client:{replicas.client_id}".encode()).decode()
    amounts = [Decimal(f"{n + 1}.25") for n in range(25)]
    async with httpx.AsyncClient(timeout=60) as http:
        responses = await asyncio.gather(
            *(
                post(
                    http,
                    server,
                    replicas.money_token,
                    ADD,
                    {
                        "input": {
                            "clientId": client,
                            "amount": str(amount),
                            "paymentMethod": "BANK_TRANSFER",
                            "idempotencyKey": f"payment-{n}",
                        }
                    },
                )
                for n, amount in enumerate(amounts)
                for server in replicas.servers
            )
        )
    # then every request succeeds; per key, both answers name the same entry, one a replay
    payloads = [response.json()["data"]["creditAdd"] for response in responses]
    assert all(response.status_code == 200 for response in responses)
    assert all(payload["userErrors"] == [] for payload in payloads)
    for n in range(len(amounts)):
        first, second = payloads[2 * n], payloads[2 * n + 1]
        assert first["entry"]["id"] == second["entry"]["id"]
        assert sorted([first["replayed"], second["replayed"]]) == [False, True]
    # and the database holds one entry per key, and a balance equal to the ledger's sum
    engine = create_engine(replicas.database_url)
    async with engine.connect() as connection:
        balance = await connection.scalar(
            select(Client.balance).where(Client.id == replicas.client_id)
        )
        total, entries = (
            await connection.execute(
                select(func.sum(CreditEntry.amount), func.count()).where(
                    CreditEntry.client_id == replicas.client_id
                )
            )
        ).one()
        keys = await connection.scalar(select(func.count()).select_from(IdempotencyKey))
    await engine.dispose()
    assert entries == keys == len(amounts)
    assert balance == total == sum(amounts)


async def test_a_tokens_rate_limit_is_one_budget_across_processes(replicas: Replicas) -> None:
    # given a query of known cost
    async with httpx.AsyncClient(timeout=60) as http:
        first = await post(http, replicas.servers[0], replicas.limited_token, COSTLY)
        assert first.status_code == 200, first.text
        points = first.json()["extensions"]["cost"]["requestedQueryCost"]
        assert points > POINTS_PER_MINUTE / 10
        # when it is sent 20 more times at once, half to each process
        started = time.monotonic()
        responses = await asyncio.gather(
            *(
                post(http, replicas.servers[n % 2], replicas.limited_token, COSTLY)
                for n in range(20)
            )
        )
        elapsed = time.monotonic() - started
    # then both processes together allow what one budget holds (plus what it refilled while
    # the requests ran), where two budgets would have allowed twice as many
    allowed = 1 + sum(response.status_code == 200 for response in responses)
    refused = [response for response in responses if response.status_code == 429]
    refill = POINTS_PER_MINUTE / 60 * (elapsed + 1)
    assert (
        POINTS_PER_MINUTE // points <= allowed <= math.floor((POINTS_PER_MINUTE + refill) / points)
    )
    assert allowed + len(refused) == 21
    assert {response.json()["errors"][0]["extensions"]["code"] for response in refused} == {
        "RATE_LIMITED"
    }
    assert all(int(response.headers["Retry-After"]) >= 1 for response in refused)
