"""A real server process on loopback, as operators run it, for tests from the outside."""

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from clientdesk.demo import DEMO_ADMIN_EMAIL, seed_demo_data
from db.enums import TokenKind
from db.models import StaffUser
from db.session import create_engine, create_sessionmaker
from services.auth import issue_token
from tests.conftest import create_scratch_database, drop_scratch_databases

ROOT = Path(__file__).parent.parent.parent
CLIENTDESK = str(Path(sys.executable).parent / "clientdesk")
STARTED = "Application startup complete"


@dataclass
class LiveServer:
    url: str
    token: str
    database_url: str
    log: list[str] = field(default_factory=list)

    @property
    def graphql(self) -> str:
        return f"{self.url}/graphql"

    def failures(self) -> list[str]:
        """Log lines of unexpected errors (masked for callers, logged in full here)."""
        return [line for line in self.log if "resolver_failed" in line or "Traceback" in line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
async def live_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    database_url = await create_scratch_database(backend, tmp_path_factory.mktemp("live"))
    engine = create_engine(database_url)
    await seed_demo_data(engine, clients=60, seed=5, now=datetime(2026, 6, 1, tzinfo=UTC))
    async with create_sessionmaker(engine)() as session:
        admin = await session.scalar(select(StaffUser).where(StaffUser.email == DEMO_ADMIN_EMAIL))
        assert admin is not None
        token = (
            await issue_token(
                session, staff=admin, kind=TokenKind.API, name="blackbox", now=datetime.now(UTC)
            )
        ).token
        await session.commit()
    await engine.dispose()
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CLIENTDESK_PORT": str(port),
        "CLIENTDESK_MAIL_SENDER": "false",
        "CLIENTDESK_RATE_LIMIT_POINTS_PER_MINUTE": "0",  # the tools send many requests
        "CLIENTDESK_LOG_LEVEL": "INFO",
    }
    command = [CLIENTDESK, "serve"]
    process = await asyncio.to_thread(
        subprocess.Popen,
        command,
        env=environment,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", token, database_url)
    started = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            server.log.append(line)
            if STARTED in line:
                started.set()
        started.set()  # the process ended: let the fixture see it

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    assert started.wait(60), "the server did not start"
    assert process.poll() is None, "".join(server.log)
    yield server
    process.terminate()
    process.wait(30)
    reader.join(10)
    assert process.stderr is not None
    process.stderr.close()
    await drop_scratch_databases([database_url])
