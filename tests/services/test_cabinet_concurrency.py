"""Blocking a client while its cabinet is being opened, over separate connections through the
whole stack, really committing: whichever comes first, no cabinet of a blocked client opens."""

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from clientdesk.settings import Settings
from db.session import create_engine
from gql.app import create_app
from tests.conftest import FakeClock
from tests.servers import seed_admin_and_client

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ROUNDS = 25
BLOCK = """
mutation($id: ID!) { clientBlock(id: $id, reason: "Fraud") { userErrors { code } } }
"""
UNBLOCK = "mutation($id: ID!) { clientUnblock(id: $id) { userErrors { code } } }"
IMPERSONATE = """
mutation($id: ID!) {
  clientImpersonate(id: $id, reason: "Support") { token userErrors { code } }
}
"""


@dataclass
class Stack:
    token: str
    client: str
    http: httpx.AsyncClient

    async def call(self, query: str) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": {"id": self.client}},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return next(iter(body["data"].values()))  # type: ignore[no-any-return]


@pytest.fixture
async def stack(scratch_url: str) -> AsyncIterator[Stack]:
    """A committing database with an admin, their token, and a client."""
    seeded = await seed_admin_and_client(scratch_url)
    engine = create_engine(scratch_url, pool_size=10, max_overflow=10)
    settings = Settings(database_url=scratch_url, rate_limit_points_per_minute=0)
    app = create_app(settings, engine=engine, clock=FakeClock(NOW))
    client = base64.b64encode(f"Client:{seeded.client_id}".encode()).decode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stack.test") as http:
        yield Stack(seeded.tokens[0], client, http)
    await engine.dispose()


async def together(barrier: asyncio.Barrier, stack: Stack, query: str) -> dict[str, Any]:
    """`query`, sent once every task at the barrier has arrived."""
    await barrier.wait()
    return await stack.call(query)


async def test_block_racing_impersonation_leaves_no_open_cabinet(stack: Stack) -> None:
    issued: list[str] = []
    for _ in range(ROUNDS):
        # given an unblocked client
        # when a block and an impersonation start at the same moment
        barrier = asyncio.Barrier(2)
        blocked, opened = await asyncio.gather(
            together(barrier, stack, BLOCK), together(barrier, stack, IMPERSONATE)
        )
        # then the block holds, and the impersonation came before it or was refused by it
        assert blocked["userErrors"] == []
        codes = [error["code"] for error in opened["userErrors"]]
        assert codes in ([], ["CLIENT_CANNOT_LOGIN"])
        if opened["token"]:
            issued.append(opened["token"])
        # and no cabinet of the blocked client opens, from this round or any before
        for token in issued:
            answer = await stack.http.get(
                "/cabinet/session", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["reason"] == "client_blocked"
        assert (await stack.call(UNBLOCK))["userErrors"] == []
    assert issued, "no impersonation came before its block: nothing was tried"
    # while unblocked, the sessions issued are open again (none was lost or revoked)
    for token in issued:
        answer = await stack.http.get(
            "/cabinet/session", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
