"""Engines and sessions: one engine per process, one session per request or command."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, Result, Select, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.direct import fetch_all


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str | URL,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    statement_timeout_ms: int | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine configured for our two databases (SQLite embedded, PostgreSQL served).

    `statement_timeout_ms` bounds every statement on PostgreSQL (servers set it; the CLI's
    migrations and bulk loads run without it).
    """
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={
            "server_settings": {
                "application_name": "clientdesk",
                "statement_timeout": str(statement_timeout_ms or 0),
            }
        },
        **kwargs,
    )
    _replace_dead_connections(engine)
    return engine


def _replace_dead_connections(engine: AsyncEngine) -> None:
    # A pooled connection whose server went away (a restart, a failover, an idle timeout)
    # is replaced when it is checked out. asyncpg notices a closed socket by itself, so this
    # costs nothing, where SQLAlchemy's pre-ping costs three round trips per checkout.
    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")


def _configure_sqlite(engine: AsyncEngine) -> None:
    # The sqlite3 module opens transactions on its own schedule, which breaks SAVEPOINT and
    # transactional DDL; take over and let SQLAlchemy emit BEGIN (SQLAlchemy's documented recipe).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A transaction that will write takes the write lock up front (see begin_write).
        immediate = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "clientdesk_writes"


async def begin_write(session: AsyncSession) -> None:
    """Start the transaction of a change.

    On SQLite, a transaction that reads and then writes cannot get the write lock if another
    connection wrote in between (it fails at once, "database is locked"); so a change begins
    with BEGIN IMMEDIATE and waits its turn instead. PostgreSQL needs nothing: its changes
    lock rows.
    """
    if session.in_transaction():
        await session.commit()
    await session.connection(execution_options={WRITE_OPTION: True})


def create_sessionmaker(bind: Any) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (resolvers read them afterwards)."""
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit what the block did, or roll all of it back if it raised."""
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


class SessionFinished(RuntimeError):
    """A resolver touched the database after its request had been answered."""


class SharedSession:
    """A request's session, shared by resolvers that run concurrently, used by one at a time.

    GraphQL resolves sibling fields (and dataloader batches) concurrently, while an
    AsyncSession must only ever run one statement at a time. When a field fails, the response
    can be complete while sibling resolvers still run: `finish` waits for the statement in
    flight and then refuses any later one, so no straggler reopens the session.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._lock = asyncio.Lock()
        self._finished = False

    async def execute(self, statement: Executable) -> Result[*tuple[Any, ...]]:
        async with self.exclusive() as session:
            return await session.execute(statement)

    async def fetch_all(self, statement: Select[*tuple[Any, ...]]) -> Sequence[Sequence[Any]]:
        """Rows as plain sequences, straight from the driver where it can (db.direct)."""
        async with self.exclusive() as session:
            return await fetch_all(await session.connection(), statement)

    async def scalar(self, statement: Executable) -> Any:
        async with self.exclusive() as session:
            return await session.scalar(statement)

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[AsyncSession]:
        """The session itself, for a service call that runs several statements."""
        async with self._lock:
            if self._finished:
                raise SessionFinished("the request has been answered")
            yield self._session

    async def finish(self) -> None:
        """Wait for the statement in flight, then refuse the rest."""
        async with self._lock:
            self._finished = True
