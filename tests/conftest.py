"""Real databases for every test: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set.

Each database test runs once per backend (ids `[sqlite]` and `[postgresql]`). A test works
inside a transaction that is rolled back afterwards; the code under test commits to
savepoints inside it. Tests that must really commit (CLI, demo data, concurrency) get a
scratch database of their own.

When TEST_DATABASE_URL is set but PostgreSQL is unreachable the tests error: they never skip.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from clientdesk.settings import Settings
from db.migrate import upgrade
from db.session import create_engine, is_sqlite
from gql.app import create_app
from services.auth import configure_password_hasher
from tests.api import GraphQLClient
from tests.factories import Factory
from tests.fuzzing import fuzz_summary
from tests.logcheck import (  # noqa: F401  (pytest hooks: logged errors fail the run)
    logged_errors_summary,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_protocol,
    pytest_sessionfinish,
)

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]

# Hashing cost is a setting; the suite uses a cheap one (one test checks the real defaults).
configure_password_hasher(time_cost=1, memory_kib=1024, parallelism=1)


def pytest_report_header(config: pytest.Config) -> str:
    return f"databases under test: {', '.join(BACKENDS)}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many tests passed on each database, so CI output shows PostgreSQL really ran."""
    fuzz_summary(terminalreporter)  # how many cases the fuzzing tests ran
    logged_errors_summary(terminalreporter)
    passed = terminalreporter.stats.get("passed", [])
    counts = {b: sum(f"[{b}" in r.nodeid or f"-{b}" in r.nodeid for r in passed) for b in BACKENDS}
    summary = ", ".join(f"{backend} {n}" for backend, n in counts.items())
    terminalreporter.write_line(f"database tests passed per backend: {summary}")


def asyncpg_url(url: str) -> str:
    """Accept plain `postgresql://` URLs too (as psql and most tools write them)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_scratch_numbers = count(1)


async def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
async def engine(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """The backend's database, migrated from scratch once per test session."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    else:
        assert POSTGRES_URL is not None
        url = asyncpg_url(POSTGRES_URL)
        await _reset_postgres(url)
    engine = create_engine(url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions on the test's connection: their commits become savepoint releases."""
    return async_sessionmaker(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def settings() -> Settings:
    # The rate limit has tests of its own; elsewhere the clock stands still and would run
    # the buckets dry.
    return Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        log_format="console",
        rate_limit_points_per_minute=0,
        jobs_in_process=False,  # tests drain the queue themselves (app.state.jobs.drain())
    )


@pytest.fixture
def app(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
) -> Any:
    return create_app(settings, engine=engine, sessionmaker=sessionmaker, clock=clock)


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://clientdesk.test") as client:
        yield client


@pytest.fixture
def api(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
def factory(session: AsyncSession, clock: FakeClock) -> Factory:
    return Factory(session, clock)


async def create_scratch_database(backend: str, directory: Path) -> str:
    """An empty, migrated database of the backend's kind; the caller drops it."""
    number = next(_scratch_numbers)
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{directory / f'scratch{number}.db'}"
    else:
        assert POSTGRES_URL is not None
        name = f"clientdesk_scratch_{os.getpid()}_{number}"
        admin = create_engine(asyncpg_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = make_url(asyncpg_url(POSTGRES_URL)).set(database=name)
        url = url.render_as_string(hide_password=False)
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


async def drop_scratch_databases(urls: list[str]) -> None:
    names = [make_url(url).database for url in urls if not is_sqlite(url)]
    if not names:
        return
    assert POSTGRES_URL is not None
    admin = create_engine(asyncpg_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        for name in names:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


class ScratchDatabases:
    """Empty, migrated databases of one backend that a test may commit to; dropped afterwards."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.directory = directory
        self.created: list[str] = []

    async def create(self) -> str:
        url = await create_scratch_database(self.backend, self.directory)
        self.created.append(url)
        return url

    async def drop_all(self) -> None:
        await drop_scratch_databases(self.created)


@pytest.fixture
async def scratch(backend: str, tmp_path: Path) -> AsyncIterator[ScratchDatabases]:
    databases = ScratchDatabases(backend, tmp_path)
    yield databases
    await databases.drop_all()


@pytest.fixture
async def scratch_url(scratch: ScratchDatabases) -> str:
    """One empty, migrated database of the backend's kind that the test may commit to."""
    return await scratch.create()


async def backends_until(
    connection: AsyncConnection, condition: str, done: Callable[[int], bool]
) -> int:
    """How many of this database's other backends match `condition` (SQL over
    pg_stat_activity), asked again until `done` says so (for 30 seconds at most)."""
    found = 0
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        found = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                f"AND pid <> pg_backend_pid() AND {condition}"
            )
        )
        await connection.commit()  # pg_stat_activity is read once per transaction
        if done(found):
            break
        await asyncio.sleep(0.005)  # a backend exiting or a lock being waited for: soon
    return found
