"""Engines and sessions: one engine per process, one session per request or command."""

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Executable, Result, Select, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.direct import Reused, Shaped, fetch_all, light_rows


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
    # Errors (logged, and recorded in trace spans) show the SQL but never the values in it.
    kwargs.setdefault("hide_parameters", True)
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
# What asyncpg raises on a connection the server has closed, however it finds out.
DISCONNECTED = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
)


T = TypeVar("T")


def _disconnected(error: DBAPIError) -> bool:
    """Whether a statement failed because its connection was gone (not for what it asked)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DISCONNECTED):
            return True
        cause = cause.__cause__
    return error.connection_invalidated


# PostgreSQL's serialization failure and deadlock: the transaction lost a race and may succeed
# if run again from the start.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# SQLite's: the write lock not had in time, or a read snapshot older than the last write.
RETRYABLE_SQLITE = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_LOCKED"})


def lost_race(error: DBAPIError) -> bool:
    """Whether a statement failed because a concurrent transaction won (a deadlock, a
    serialization failure, SQLite's busy database): the whole transaction may be run again."""
    original = error.orig
    if getattr(original, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    cause = getattr(original, "__cause__", None)
    return getattr(cause, "sqlite_errorname", None) in RETRYABLE_SQLITE or (
        getattr(original, "sqlite_errorname", None) in RETRYABLE_SQLITE
    )


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


# SQLite has one writer at a time. The writers of one process take turns here, in order,
# before BEGIN IMMEDIATE: left to SQLite, every waiting writer polls the lock with ever longer
# sleeps (its busy handler), and a writer can wait seconds while later ones go first. The
# processes of one server (`serve --workers N`) then take turns on a lock file beside the
# database, which a waiting process blocks on (in a thread) instead of polling: one waiter
# per process, woken as soon as the other lets go.
_write_turns: dict[tuple[int, int], asyncio.Lock] = {}
_lock_files: dict[str, int] = {}


def lock_file(database: str | None) -> int | None:
    """This process's descriptor of the database's lock file; None for a database in memory."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    found = _lock_files.get(database)
    if found is None:
        found = _lock_files[database] = os.open(
            f"{database}.write-turn", os.O_RDWR | os.O_CREAT, 0o600
        )
    return found


@asynccontextmanager
async def between_processes(descriptor: int | None) -> AsyncIterator[None]:
    """The lock file held for the block: at once if free, else waited for in a thread."""
    if descriptor is None:
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        taking = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX))
        try:
            await asyncio.shield(taking)
        except asyncio.CancelledError:
            # the thread still takes it: let go of it then, or no process would write again
            taking.add_done_callback(
                lambda done: (
                    None
                    if done.cancelled() or done.exception()
                    else fcntl.flock(descriptor, fcntl.LOCK_UN)
                )
            )
            raise
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


@asynccontextmanager
async def write_turn(session: AsyncSession) -> AsyncIterator[None]:
    """On SQLite, this server's turn to write (one change at a time across its processes);
    nothing elsewhere."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    engine = getattr(bind, "engine", bind)
    key = (id(engine), id(asyncio.get_running_loop()))
    turn = _write_turns.get(key)
    if turn is None:
        turn = _write_turns[key] = asyncio.Lock()
    url = getattr(engine, "url", None)
    async with turn, between_processes(lock_file(url.database if url is not None else None)):
        yield


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
    """A request's database access, shared by resolvers that run concurrently, used by one at a
    time.

    GraphQL resolves sibling fields (and dataloader batches) concurrently, while a connection
    must only ever run one statement at a time. When a field fails, the response can be
    complete while sibling resolvers still run: `finish` waits for the statement in flight
    and then refuses any later one, so no straggler reopens the session.

    Nothing is opened until it is needed. Reads through `fetch_all` (the token look-up, the
    compiled read path) use a plain connection; the ORM session is made for whatever else runs,
    after that connection went back to the pool (so a request never holds two, and on SQLite
    no read transaction is left open under a write).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._reader: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._finished = False

    @property
    def dialect_name(self) -> str:
        """ "sqlite" or "postgresql", for the few statements that differ."""
        return str(self._sessions.kw["bind"].dialect.name)

    async def execute(self, statement: Executable) -> Result[*tuple[Any, ...]]:
        """Run a read (resolvers read through here; changes go through `exclusive`)."""
        async with self._lock:
            return await self._read(lambda session: session.execute(statement))

    async def fetch_all(
        self, statement: Select[*tuple[Any, ...]] | Reused | Shaped, parameters: Any = None
    ) -> Sequence[Sequence[Any]]:
        """Rows as plain sequences, straight from the driver where it can (db.direct)."""
        async with self._lock:
            if self._finished:
                raise SessionFinished("the request has been answered")
            if self._session is not None:
                return await fetch_all(await self._session.connection(), statement, parameters)
            bind = self._sessions.kw["bind"]
            if isinstance(bind, AsyncConnection):  # tests: their connection, in a transaction
                return await fetch_all(bind, statement, parameters)
            fresh = self._reader is None
            if self._reader is None:
                self._reader = await bind.connect()
            try:
                return await fetch_all(self._reader, statement, parameters)
            except DISCONNECTED:
                if not fresh:
                    raise
                # The server closed it while it sat in the pool (a restart, a failover), and
                # the others may be gone too: start a new pool, and read on a new connection.
                await self._reader.invalidate()
                self._reader = None
                await self._renew_pool()
                self._reader = await bind.connect()
                return await fetch_all(self._reader, statement, parameters)

    async def rows(
        self, statement: Select[*tuple[Any, ...]] | Shaped, parameters: Any = None
    ) -> list[Any]:
        """A read's rows, straight from the driver (`fetch_all`), each with its columns as
        attributes (and `_mapping`), as SQLAlchemy's rows have them."""
        select_ = statement.statement if isinstance(statement, Shaped) else statement
        columns = tuple(select_.selected_columns.keys())
        return light_rows(columns, await self.fetch_all(statement, parameters))

    async def scalar(self, statement: Executable) -> Any:
        async with self._lock:
            return await self._read(lambda session: session.scalar(statement))

    async def _read(self, run: Callable[[AsyncSession], Awaitable[T]]) -> T:
        # Called under the lock. The first statement of the request's session is where a
        # connection the server closed shows itself (asyncpg may not have seen the socket close
        # yet when the pool hands it out): nothing has run in that session, so the read is
        # safe to run again, on a new pool. Later statements are not retried.
        fresh = self._session is None
        session = await self._open_session_after_reader()
        try:
            return await run(session)
        except DBAPIError as error:
            if not (fresh and _disconnected(error)):
                raise
        self._session = None
        await session.invalidate()
        await self._renew_pool()
        return await run(self._open_session())

    async def _renew_pool(self) -> None:
        """After a connection the server had closed (a restart, a failover): the pool's others
        may be gone too, so later connections come from a new pool."""
        bind = self._sessions.kw["bind"]
        if isinstance(bind, AsyncEngine):
            await bind.dispose(close=False)

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[AsyncSession]:
        """The session itself, for a service call that runs several statements."""
        async with self._lock:
            yield await self._open_session_after_reader()

    async def _open_session_after_reader(self) -> AsyncSession:
        if self._session is None:
            await self._release_reader()
        return self._open_session()

    def _open_session(self) -> AsyncSession:
        if self._finished:
            raise SessionFinished("the request has been answered")
        if self._session is None:
            self._session = self._sessions()
        return self._session

    async def idle(self) -> None:
        """Give the plain read connection back to the pool before a long wait that needs none
        (a password scoring's turn); a later read takes one again."""
        async with self._lock:
            await self._release_reader()

    async def finish(self) -> None:
        """Wait for the statement in flight, then refuse the rest and close what is open."""
        async with self._lock:
            self._finished = True
            await self._release_reader()
            if self._session is not None:
                await self._session.close()

    async def _release_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader is not self._sessions.kw["bind"]:
            await reader.close()
