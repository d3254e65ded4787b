"""Demo data: varied enough to exercise every filter, consistent, and deterministic."""

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from clientdesk.demo import seed_demo_data
from db.enums import ClientStatus, ConnectionType, EntryKind
from db.models import (
    Client,
    ClientConnection,
    CreditEntry,
    CreditNoteLine,
    CustomFieldValue,
    PackagePrice,
    StaffUser,
    client_departments,
)
from db.session import create_engine
from tests.conftest import ScratchDatabases

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def seeded(url: str, clients: int, seed: int = 7) -> AsyncEngine:
    engine = create_engine(url)
    assert await seed_demo_data(engine, clients=clients, seed=seed, now=NOW) == clients
    return engine


async def test_demo_data_is_varied_and_consistent(scratch_url: str) -> None:
    engine = await seeded(scratch_url, 1500)
    async with engine.connect() as db:
        clients = (await db.execute(select(Client))).all()
        assert len(clients) == 1500
        currencies = Counter(c.currency for c in clients)
        assert {"JPY", "KWD", "USD", "EUR"} <= set(currencies)  # 0- and 3-decimal ones too
        assert len({c.country for c in clients}) >= 10
        assert {c.status for c in clients} == set(ClientStatus)
        blocked = [c for c in clients if c.blocked_at is not None]
        assert any(c.blocked_until is None for c in blocked)
        assert any(c.blocked_until is not None and c.blocked_until > NOW for c in blocked)
        assert any(c.blocked_until is not None and c.blocked_until <= NOW for c in blocked)
        assert any(c.manager_id is None for c in clients)
        assert len({c.manager_id for c in clients}) >= 5
        by_id = {c.id: c for c in clients}
        by_login = {c.login: c for c in clients}
        # the clients the README's examples use
        assert by_login["acme.marketing"].parent_id == by_login["acme"].id
        assert (by_login["globex"].currency, by_login["initech"].currency) == ("JPY", "KWD")
        assert by_login["initech"].blocked_at is not None
        subs = [c for c in clients if c.parent_id is not None]
        assert subs
        for sub in subs:  # one level deep, same currency as the parent
            parent = by_id[sub.parent_id]
            assert parent.parent_id is None
            assert parent.currency == sub.currency
        assert any(c.price_adjustment_percent < 0 for c in clients)
        assert any(c.price_adjustment_percent > 0 for c in clients)
        assert all(c.email or c.phone for c in clients)
        created = [c.created_at for c in clients]
        assert max(created) - min(created) > timedelta(days=600)
        assert any(
            c.last_activity_at and c.last_activity_at > NOW - timedelta(days=7) for c in clients
        )
        assert sum(c.chats_count for c in clients) > 0
        assert sum(c.support_requests_count for c in clients) > 0

        # the stored balance is the ledger's sum and within the credit limit
        sums = dict(
            (
                await db.execute(
                    select(CreditEntry.client_id, func.sum(CreditEntry.amount)).group_by(
                        CreditEntry.client_id
                    )
                )
            ).all()
        )
        for c in clients:
            assert c.balance == sums.get(c.id, Decimal(0))
            assert c.balance >= -c.credit_limit
        kinds = Counter((await db.scalars(select(CreditEntry.kind))).all())
        assert set(kinds) == set(EntryKind)
        assert await db.scalar(select(func.count()).where(CreditEntry.amount < 0)) > 0
        assert await db.scalar(select(func.count()).where(CreditNoteLine.amount < 0)) > 0
        types = set((await db.scalars(select(ClientConnection.type))).all())
        assert types == set(ConnectionType)
        assert await db.scalar(select(func.count()).select_from(CustomFieldValue)) > 0
        assert await db.scalar(select(func.count()).select_from(client_departments)) > 0
        assert await db.scalar(select(func.count()).select_from(PackagePrice)) > 0
        assert await db.scalar(select(func.count()).select_from(StaffUser)) >= 6
    await engine.dispose()


async def fingerprint(engine: AsyncEngine) -> str:
    digest = hashlib.sha256()
    async with engine.connect() as db:
        for table in (Client, CreditEntry, ClientConnection):
            rows = (
                await db.execute(select(table.__table__).order_by(*table.__table__.primary_key))
            ).all()
            for row in rows:
                digest.update(
                    repr([v for k, v in row._mapping.items() if k != "password_hash"]).encode()
                )
    return digest.hexdigest()


async def test_same_seed_same_data(scratch: ScratchDatabases) -> None:
    first = await seeded(await scratch.create(), 300, seed=11)
    second = await seeded(await scratch.create(), 300, seed=11)
    other = await seeded(await scratch.create(), 300, seed=12)
    try:
        assert await fingerprint(first) == await fingerprint(second)
        assert await fingerprint(first) != await fingerprint(other)
    finally:
        for engine in (first, second, other):
            await engine.dispose()


async def test_seeding_again_adds_more_clients(scratch_url: str) -> None:
    engine = await seeded(scratch_url, 50)
    assert await seed_demo_data(engine, clients=30, seed=8, now=NOW) == 30
    assert await seed_demo_data(engine, clients=30, if_empty=True, now=NOW) == 0
    async with engine.begin() as db:
        assert await db.scalar(select(func.count()).select_from(Client)) == 80
        # rows added later get ids past the bulk-loaded ones (sequences were moved)
        new_id = await db.scalar(
            insert(Client)
            .values(login="later", password_hash="x", email="l@example.com", currency="EUR")
            .returning(Client.id)
        )
        assert new_id == 81
    await engine.dispose()


async def test_seeded_data_has_planner_statistics(scratch_url: str) -> None:
    # without them SQLite sorted the whole list for the first page (it took the status index)
    engine = await seeded(scratch_url, 300)
    try:
        async with engine.connect() as db:
            if db.dialect.name == "sqlite":
                found = await db.scalar(
                    text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'clients'")
                )
            else:
                found = await db.scalar(
                    text("SELECT count(*) FROM pg_stats WHERE tablename = 'clients'")
                )
        assert (found or 0) > 0
    finally:
        await engine.dispose()
