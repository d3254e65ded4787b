"""The client lock (services/locks.py): fresh rows, NOT_FOUND when gone, and on SQLite no
decision on a read older than the last write."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from db.models import Client
from db.session import create_engine, create_sessionmaker, lost_race
from services.errors import DomainError, ErrorCode
from services.locks import lock_client, lock_clients

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def seeded(url: str) -> int:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        client = Client(
            login="locked",
            password_hash="x",
            email="locked@example.com",
            currency="EUR",
            balance=Decimal(0),
            credit_limit=Decimal(0),
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(client)
        await session.commit()
        pk = client.id
    await engine.dispose()
    return pk


async def test_the_lock_reads_the_row_as_last_committed(scratch_url: str, backend: str) -> None:
    pk = await seeded(scratch_url)
    engine = create_engine(scratch_url)
    sessions = create_sessionmaker(engine)
    async with sessions() as reader, sessions() as writer:
        # given a transaction that read the client, then another that changed it
        stale = await reader.get(Client, pk)
        assert stale is not None
        assert stale.currency == "EUR"
        await writer.execute(update(Client).where(Client.id == pk).values(currency="USD"))
        await writer.commit()
        if backend == "sqlite":
            # then on SQLite the lock refuses to decide on the older read: run it again
            with pytest.raises(DBAPIError) as refused:
                await lock_clients(reader, [pk])
            assert lost_race(refused.value)
            await reader.rollback()
        # and a lock (again) gives the row as committed, in the same object
        fresh = await lock_client(reader, pk)
        assert fresh is stale
        assert fresh.currency == "USD"
        await reader.rollback()
    await engine.dispose()


async def test_a_client_gone_is_not_found(scratch_url: str) -> None:
    pk = await seeded(scratch_url)
    engine = create_engine(scratch_url)
    async with create_sessionmaker(engine)() as session:
        assert set(await lock_clients(session, [pk + 1, pk])) == {pk}
        with pytest.raises(DomainError) as missing:
            await lock_client(session, pk + 1, field=["parent_id"])
        assert (missing.value.code, missing.value.field) == (ErrorCode.NOT_FOUND, ["parent_id"])
        assert await session.scalar(select(Client.login).where(Client.id == pk)) == "locked"
    await engine.dispose()
