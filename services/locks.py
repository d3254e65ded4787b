"""Row locks on clients: the one way a change reads the clients its rules depend on.

A rule that reads another row (a currency, a balance, a parent, whether a client still exists)
is decided on rows locked in the same transaction and read after the lock. Clients are locked
in ascending id order, so two changes that lock the same clients queue instead of deadlocking.

- PostgreSQL: SELECT … FOR UPDATE, which waits for a concurrent change of the row and then
  reads its committed version (a row deleted meanwhile is not returned).
- SQLite: one writer at a time. A change begins with BEGIN IMMEDIATE (db.session.begin_write);
  a transaction that began as a read takes the write lock here with a statement that writes
  nothing, and fails ("database is locked", retried by the caller) if another connection
  wrote since it began to read, so nothing is decided on a stale read.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, bindparam, false, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import direct
from db.direct import Shaped, row_class
from db.models import Client
from db.queries import billing_mode_column
from services.errors import DomainError, ErrorCode


async def lock_clients(session: AsyncSession, ids: Iterable[int]) -> dict[int, Client]:
    """The clients that exist among `ids`, row-locked in id order and read afresh."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    await _sqlite_write_lock(session)
    if len(wanted) == 1:  # the usual case, by a statement built once
        rows = await session.scalars(LOCK_ONE, {"client_id": wanted[0]})
    else:
        rows = await session.scalars(
            select(Client)
            .where(Client.id.in_(wanted))
            .order_by(Client.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    return {client.id: client for client in rows}


LOCK_ONE = (
    select(Client)
    .where(Client.id == bindparam("client_id", type_=BigInteger))
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def _sqlite_write_lock(session: AsyncSession) -> None:
    """SQLite: the write lock, taken by a statement that writes nothing (see above)."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(Client).where(false()).values(id=Client.id),
            execution_options={"synchronize_session": False},
        )


LOCK_ROW = Shaped(
    # with Billing Mode, which the ledger's rules read: in the same statement, so no round trip
    select(Client.__table__, billing_mode_column().label("billing_mode"))
    .where(Client.__table__.c.id == bindparam("client_id", type_=BigInteger))
    .with_for_update(of=Client.__table__)
)


async def lock_client_row(session: AsyncSession, client_id: int) -> Any:
    """One client's row (its columns as attributes, as a Client has them), row-locked and read
    afresh, or None when it is gone: `lock_client` without an ORM object, for a change that
    writes with statements of its own (the ledger's)."""
    await _sqlite_write_lock(session)
    connection = await session.connection()
    rows = await direct.write(connection, LOCK_ROW, {"client_id": client_id})
    return row_class(LOCK_ROW.columns)(tuple(rows[0])) if rows else None


LOCK_ROWS = Shaped(
    select(Client.__table__, billing_mode_column().label("billing_mode"))
    .where(Client.__table__.c.id.in_(bindparam("client_ids", expanding=True)))
    .order_by(Client.__table__.c.id)
    .with_for_update(of=Client.__table__)
)


async def lock_client_rows(session: AsyncSession, ids: Iterable[int]) -> dict[int, Any]:
    """`lock_client_row` for many clients in one statement, in id order: those that exist."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    await _sqlite_write_lock(session)
    connection = await session.connection()
    rows = await direct.write(connection, LOCK_ROWS, {"client_ids": wanted})
    make = row_class(LOCK_ROWS.columns)
    locked: list[Any] = [make(tuple(found)) for found in rows]
    return {row.id: row for row in locked}


async def lock_client(
    session: AsyncSession, client_id: int, *, field: Sequence[str] = ("id",)
) -> Client:
    """One client, row-locked and read afresh; NOT_FOUND on `field` when it is gone."""
    client = (await lock_clients(session, [client_id])).get(client_id)
    if client is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such client", field)
    return client
