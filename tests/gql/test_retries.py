"""A change that loses a race in the database runs again from the start, a bounded number of
times, and is then answered with CONFLICT (gql/errors.py `attempt`)."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import StaffRole
from db.models import Client
from db.session import create_engine, create_sessionmaker
from gql.errors import RUNS, run_retrying
from services.actors import Actor
from services.errors import DomainError, ErrorCode
from tests.conftest import POSTGRES_URL

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ACTOR = Actor(1, "ops@example.com", StaffRole.ADMIN, NOW)


async def two_clients(url: str) -> list[int]:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        clients = [
            Client(
                login=f"racer{n}",
                password_hash="x",
                email=f"racer{n}@example.com",
                currency="EUR",
                balance=Decimal(0),
                credit_limit=Decimal(0),
                created_at=NOW,
                updated_at=NOW,
            )
            for n in range(2)
        ]
        session.add_all(clients)
        await session.commit()
        ids = [client.id for client in clients]
    await engine.dispose()
    return ids


# PostgreSQL only: SQLite has one writer at a time, so changes cannot deadlock there
@pytest.mark.parametrize("backend", ["postgresql"] if POSTGRES_URL else [], indirect=True)
async def test_a_change_that_deadlocks_runs_again(scratch_url: str, backend: str) -> None:
    # given two changes that lock the same two clients in opposite orders (ours never do)
    a, b = await two_clients(scratch_url)
    barrier = asyncio.Barrier(2)
    runs: list[int] = []

    async def lock_both(session: AsyncSession, *, actor: Actor, first: int, second: int) -> int:
        runs.append(first)
        await session.execute(select(Client.id).where(Client.id == first).with_for_update())
        if runs.count(first) == 1:
            await barrier.wait()  # both hold their first lock: the second locks deadlock
        await session.execute(select(Client.id).where(Client.id == second).with_for_update())
        await session.commit()
        return first

    engine = create_engine(scratch_url)
    sessions = create_sessionmaker(engine)
    async with sessions() as one, sessions() as two:
        # when they run at once
        results = await asyncio.gather(
            run_retrying(one, lock_both, ACTOR, {"first": a, "second": b}),
            run_retrying(two, lock_both, ACTOR, {"first": b, "second": a}),
        )
    await engine.dispose()
    # then PostgreSQL stops one, which runs again and succeeds after the other
    assert sorted(results) == sorted([a, b])
    assert len(runs) == 3


class LostRace(Exception):
    """What the driver reports for a serialization failure."""

    sqlstate = "40001"


async def test_a_change_that_keeps_losing_is_a_conflict(scratch_url: str) -> None:
    calls: list[int] = []

    async def always_loses(session: AsyncSession, *, actor: Actor) -> Any:
        calls.append(1)
        await session.execute(select(Client.id))
        raise DBAPIError("UPDATE clients …", None, LostRace())

    engine = create_engine(scratch_url)
    async with create_sessionmaker(engine)() as session:
        with pytest.raises(DomainError) as refused:
            await run_retrying(session, always_loses, ACTOR, {})
    await engine.dispose()
    assert refused.value.code is ErrorCode.CONFLICT
    assert len(calls) == RUNS


async def test_other_database_errors_are_not_retried(scratch_url: str) -> None:
    calls: list[int] = []

    async def broken(session: AsyncSession, *, actor: Actor) -> Any:
        calls.append(1)
        await session.execute(select(Client.id))
        raise DBAPIError("SELECT …", None, ValueError("not a race"))

    engine = create_engine(scratch_url)
    async with create_sessionmaker(engine)() as session:
        with pytest.raises(DBAPIError):
            await run_retrying(session, broken, ACTOR, {})
    await engine.dispose()
    assert calls == [1]
