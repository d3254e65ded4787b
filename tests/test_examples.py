"""The partner script in examples/ works against the real API, a flaky network included."""

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from db.models import CreditEntry
from examples.partner_sync import Clientdesk, Replica, sync
from tests.conftest import FakeClock
from tests.gql.test_versions_and_sync import DELETE, gid, serving, settled

RENAME = """mutation($id: ID!, $name: String) {
  clientUpdate(id: $id, input: {name: $name}) { userErrors { code } } }"""


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


async def test_partner_script_syncs_incrementally_and_pays_once_despite_lost_responses(
    scratch_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    async with serving(scratch_url, clock) as stack:
        # given 230 clients (three pages of 100) and a network that loses the first response
        clients = [await stack.factory.client(login=f"partner{n:03}") for n in range(230)]
        await settled(stack.engine)
        network = FlakyNetwork(stack.app, asyncio.get_running_loop(), lose=1)
        pauses: list[float] = []
        assert stack.api.token is not None
        api = Clientdesk(
            "http://clientdesk.test/graphql",
            stack.api.token,
            transport=network,
            sleep=pauses.append,
        )
        state = tmp_path / "copy.json"
        # when the script syncs for the first time (its first page is asked twice)
        read = await asyncio.to_thread(lambda: sync(api, Replica(state)))
        # then its copy holds every client, and the cursor to go on from is saved with it
        assert read == 230
        copy = Replica(state)
        assert sorted(c["login"] for c in copy.clients.values()) == [
            f"partner{n:03}" for n in range(230)
        ]
        assert copy.cursor is not None
        # when two clients change and one is deleted, the next run reads only those three
        for changed in clients[7], clients[100]:
            await stack.api(RENAME, {"id": gid(changed.id), "name": "Renamed"})
        await stack.api(DELETE, {"ids": [gid(clients[42].id)]})
        await settled(stack.engine)
        read = await asyncio.to_thread(lambda: sync(api, Replica(state)))
        assert read == 3
        copy = Replica(state)
        assert len(copy.clients) == 229
        assert gid(clients[42].id) not in copy.clients
        assert copy.clients[gid(clients[100].id)]["v"] == 2
        # and nothing more the time after
        assert await asyncio.to_thread(lambda: sync(api, Replica(state))) == 0
        # when it pays a client, losing that answer too
        network.lose = network.delivered + 1
        paid = await asyncio.to_thread(
            lambda: api.add_credit(gid(clients[0].id), Decimal("10.00"), reference="r-1", key="k")
        )
        # then the payment was applied once: the retry got the first answer back
        assert paid["replayed"] is True
        assert paid["entry"]["amount"] == {"amount": "10.00", "currency": "EUR"}
        entries = await stack.session.scalar(select(func.count()).select_from(CreditEntry))
        assert entries == 1
        assert pauses == [2, 2]  # one pause per lost answer, none per page
