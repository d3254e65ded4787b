"""/readyz follows the database: 503 while it cannot be reached (refused, or silent), 200 again
by itself once it is back. The database is reached through a relay the test takes away."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from clientdesk.settings import Settings
from gql.app import create_app
from tests.conftest import POSTGRES_URL, asyncpg_url

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_DATABASE_URL)")


class Relay:
    """A TCP relay on loopback to PostgreSQL: stopped, its port refuses; silent, it accepts
    connections and never answers (a database that hangs)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self.silent = False
        self.server: asyncio.Server | None = None
        self.open: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.listen_port)
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.open:
            writer.close()
        self.open.clear()
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.append(writer)
        if self.silent:
            await reader.read()  # until the caller gives up
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        self.open.append(upstream_writer)

        async def pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    target.write(data)
                    await target.drain()
            target.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    assert POSTGRES_URL is not None
    target = make_url(asyncpg_url(POSTGRES_URL))
    relay = Relay(target.host or "127.0.0.1", target.port or 5432)
    await relay.start()
    yield relay
    if relay.server is not None and relay.server.is_serving():
        await relay.stop()


@pytest.fixture
async def http(relay: Relay) -> AsyncIterator[httpx.AsyncClient]:
    assert POSTGRES_URL is not None
    url = make_url(asyncpg_url(POSTGRES_URL)).set(host="127.0.0.1", port=relay.listen_port)
    settings = Settings(
        database_url=url.render_as_string(hide_password=False),
        log_format="console",
        readiness_timeout_seconds=1.5,
    )
    app: Any = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ready.test") as client:
        yield client
    await app.state.engine.dispose()


async def readiness(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    async with asyncio.timeout(10):  # /readyz must answer, whatever the database does
        response = await http.get("/readyz")
    return response.status_code, response.json()


async def test_readyz_fails_while_the_database_refuses_and_recovers_by_itself(
    relay: Relay, http: httpx.AsyncClient
) -> None:
    # given a ready server, with a connection in its pool
    assert await readiness(http) == (200, {"status": "ok", "database": "ok"})
    # when the database goes away (its connections end, its port refuses)
    await relay.stop()
    # then the server is not ready, as often as it is asked
    for _ in range(2):
        assert await readiness(http) == (503, {"status": "unavailable", "database": "unreachable"})
    # and once the database is back, it is ready again without a restart
    await relay.start()
    assert await readiness(http) == (200, {"status": "ok", "database": "ok"})
    assert (await http.get("/healthz")).status_code == 200


async def test_readyz_gives_up_on_a_database_that_does_not_answer(
    relay: Relay, http: httpx.AsyncClient
) -> None:
    # given a database that accepts connections and never answers
    relay.silent = True
    # then /readyz says 503 after its timeout (CLIENTDESK_READINESS_TIMEOUT_SECONDS)
    assert await readiness(http) == (503, {"status": "unavailable", "database": "unreachable"})
    # and is ready again when the database answers
    relay.silent = False
    await relay.stop()
    await relay.start()
    assert await readiness(http) == (200, {"status": "ok", "database": "ok"})
