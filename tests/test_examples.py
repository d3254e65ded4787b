"""The partner script in examples/ works against the real API, a flaky network included."""

import asyncio
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CreditEntry
from examples.partner_sync import Clientdesk
from tests.factories import Factory


class FlakyNetwork(httpx.BaseTransport):
    """Carries requests to the ASGI app; for the first `lose` requests it delivers the request
    and loses the response (a connection cut after the server did the work)."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop, *, lose: int = 0) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.loop = loop
        self.lose = lose
        self.delivered = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def deliver() -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response

        response = asyncio.run_coroutine_threadsafe(deliver(), self.loop).result(30)
        self.delivered += 1
        if self.delivered <= self.lose:
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )


async def test_partner_script_syncs_every_page_and_pays_once_despite_a_lost_response(
    app: Any, factory: Factory, session: AsyncSession
) -> None:
    # given 230 clients (three pages of 100) and a network that loses the first response
    for n in range(230):
        await factory.client(login=f"partner{n:03}")
    token = await factory.admin_token()
    network = FlakyNetwork(app, asyncio.get_running_loop(), lose=1)
    pauses: list[float] = []
    api = Clientdesk(
        "http://clientdesk.test/graphql", token, transport=network, sleep=pauses.append
    )
    # when the script syncs the list (its first page is asked twice) and pays a client,
    # losing that answer too
    clients = await asyncio.to_thread(lambda: list(api.clients()))
    network.lose = network.delivered + 1
    paid = await asyncio.to_thread(
        lambda: api.add_credit(clients[0]["id"], Decimal("10.00"), reference="r-1", key="k-1")
    )
    # then it saw every client once, oldest first
    assert [client["login"] for client in clients] == [f"partner{n:03}" for n in range(230)]
    # and the payment was applied once: the retry got the first answer back
    assert paid["replayed"] is True
    assert paid["entry"]["amount"] == {"amount": "10.00", "currency": "EUR"}
    entries = await session.scalar(select(func.count()).select_from(CreditEntry))
    assert entries == 1
    assert pauses == [2, 2]  # one pause per lost answer, none per page
