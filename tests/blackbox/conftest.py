"""A real server process on loopback, as operators run it, for tests from the outside."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from clientdesk.demo import DEMO_ADMIN_EMAIL, seed_demo_data
from db.enums import TokenKind
from db.models import StaffUser
from db.session import create_engine, create_sessionmaker
from services.auth import issue_token
from tests.conftest import create_scratch_database, drop_scratch_databases
from tests.fuzzing import client_with_ledger, known_strings, real_cursors, seeded_ids
from tests.servers import ServerProcess, start_server

ROOT = Path(__file__).parent.parent.parent


@dataclass
class LiveServer:
    server: ServerProcess
    token: str
    database_url: str
    fuzz_data: Path  # seeded IDs, known strings and real cursors (tools/schemathesis_hooks.py)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def graphql(self) -> str:
        return self.server.graphql

    @property
    def log(self) -> list[str]:
        return self.server.log

    def failures(self) -> list[str]:
        return self.server.failures()


@pytest.fixture(scope="session")
async def live_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    directory = tmp_path_factory.mktemp("live")
    database_url = await create_scratch_database(backend, directory)
    engine = create_engine(database_url)
    await seed_demo_data(engine, clients=60, seed=5, now=datetime(2026, 6, 1, tzinfo=UTC))
    async with create_sessionmaker(engine)() as session:
        admin = await session.scalar(select(StaffUser).where(StaffUser.email == DEMO_ADMIN_EMAIL))
        assert admin is not None
        issued = [
            await issue_token(
                session, staff=admin, kind=TokenKind.API, name=name, now=datetime.now(UTC)
            )
            for name in ("blackbox", "spare 1", "spare 2")  # fuzzers may revoke the spares
        ]
        await session.commit()
    token = issued[0].token
    ids = await seeded_ids(engine, spare_tokens=frozenset({issued[0].token_id}))
    strings = await known_strings(engine)
    rich_client = await client_with_ledger(engine)
    await engine.dispose()
    server = await asyncio.to_thread(
        start_server,
        database_url,
        {
            "CLIENTDESK_RATE_LIMIT_POINTS_PER_MINUTE": "0",  # the tools send many requests
            "CLIENTDESK_ACCESS_LOG": "false",  # thousands of lines; errors are still logged
        },
    )
    async with httpx.AsyncClient() as http:
        cursors = await real_cursors(http, server.graphql, token, rich_client)
    fuzz_data = directory / "fuzz.json"
    fuzz_data.write_text(json.dumps({"ids": ids, "strings": strings, "cursors": cursors}))
    yield LiveServer(server, token, database_url, fuzz_data)
    await asyncio.to_thread(server.stop)
    await drop_scratch_databases([database_url])
