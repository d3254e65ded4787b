"""The client tallies always equal a count of the clients, whatever changes them and how."""

import random
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from itertools import permutations

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clientdesk.demo import seed_demo_data
from db.enums import ClientStatus, StaffRole
from db.models import Client, ClientPairTally, ClientTally, StaffUser
from db.session import create_engine

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CLIENTS = Client.__table__
Key = tuple[str, ...]


def recount(
    rows: list[tuple[ClientStatus, int | None, str | None, str, int | None]],
) -> Counter[Key]:
    """What the tallies should hold, from (status, manager_id, country, currency, parent_id):
    single dimensions, and (pair tallies) each ordered pair of dimensions but "all"."""
    counts: Counter[Key] = Counter()
    for status, manager_id, country, currency, parent_id in rows:
        values = [
            ("all", ""),
            ("manager", "" if manager_id is None else str(manager_id)),
            ("country", country or ""),
            ("currency", currency),
            ("sub_account", "0" if parent_id is None else "1"),
        ]
        for dimension, value in values:
            counts[(dimension, value, status.value)] += 1
        for by, of in permutations(values[1:], 2):
            counts[(*by, *of, status.value)] += 1
    return counts


async def tallies_and_counts(db: AsyncConnection) -> tuple[Counter[Key], Counter[Key]]:
    tallied = Counter(
        {
            (row.dimension.value, row.value, row.status.value): row.n
            for row in await db.execute(select(ClientTally))
            if row.n != 0
        }
    )
    tallied.update(
        {
            (
                row.by_dimension.value,
                row.by_value,
                row.dimension.value,
                row.value,
                row.status.value,
            ): row.n
            for row in await db.execute(select(ClientPairTally))
            if row.n != 0
        }
    )
    rows = await db.execute(
        select(Client.status, Client.manager_id, Client.country, Client.currency, Client.parent_id)
    )
    return tallied, recount([tuple(row) for row in rows])


async def test_tallies_follow_every_kind_of_change(connection: AsyncConnection) -> None:
    rng = random.Random(11)
    managers = [
        (
            await connection.execute(
                insert(StaffUser)
                .values(email=f"tally{n}@clientdesk.test", name=f"M {n}", role=StaffRole.MANAGER)
                .returning(StaffUser.id)
            )
        ).scalar_one()
        for n in range(3)
    ]
    countries = ["DE", "FR", "JP", None]
    currencies = ["EUR", "USD", "JPY"]
    ids: list[int] = []
    for step in range(80):
        action = rng.choice(["insert", "insert", "bulk_insert", "update", "bulk", "move", "delete"])
        if action in ("insert", "bulk_insert") or not ids:
            rows = [
                {
                    "login": f"tally.{step}.{n}",
                    "password_hash": "x",
                    "email": f"t{step}.{n}@example.com",
                    "currency": rng.choice(currencies),
                    "country": rng.choice(countries),
                    "status": rng.choice(list(ClientStatus)),
                    "manager_id": rng.choice([*managers, None]),
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(rng.randint(2, 5) if action == "bulk_insert" else 1)
            ]
            result = await connection.execute(insert(CLIENTS).returning(CLIENTS.c.id), rows)
            ids += [row.id for row in result]
        elif action == "update":
            await connection.execute(
                update(CLIENTS)
                .where(CLIENTS.c.id == rng.choice(ids))
                .values(
                    status=rng.choice(list(ClientStatus)),
                    manager_id=rng.choice([*managers, None]),
                    country=rng.choice(countries),
                )
            )
        elif action == "bulk":  # one statement over many rows, as clientsSetStatus does
            chosen = rng.sample(ids, min(len(ids), 4))
            await connection.execute(
                update(CLIENTS)
                .where(CLIENTS.c.id.in_(chosen))
                .values(status=rng.choice(list(ClientStatus)), balance=Decimal(rng.randint(0, 9)))
            )
        elif action == "move":  # a sub-account link and unlink, as linking does
            child, parent = rng.sample(ids, 2) if len(ids) > 1 else (ids[0], None)
            await connection.execute(
                update(CLIENTS).where(CLIENTS.c.parent_id == child).values(parent_id=None)
            )
            await connection.execute(
                update(CLIENTS).where(CLIENTS.c.id == child).values(parent_id=parent)
            )
        else:
            victim = rng.choice(ids)
            await connection.execute(
                update(CLIENTS).where(CLIENTS.c.parent_id == victim).values(parent_id=None)
            )
            await connection.execute(delete(CLIENTS).where(CLIENTS.c.id == victim))
            ids.remove(victim)
        tallied, counted = await tallies_and_counts(connection)
        assert tallied == counted, f"after step {step} ({action})"


async def test_a_balance_change_writes_no_tally(connection: AsyncConnection) -> None:
    # given a client and the tallies as they are
    await connection.execute(
        insert(CLIENTS).values(
            login="tally.balance", password_hash="x", email="b@example.com", currency="EUR"
        )
    )
    version = (
        "SELECT xmin::text || dimension || value || status || n FROM client_tallies ORDER BY 1"
        if connection.dialect.name == "postgresql"
        else "SELECT dimension || value || status || n FROM client_tallies ORDER BY 1"
    )
    before = (await connection.execute(text(version))).scalars().all()
    # when only its money changes (what every ledger entry does)
    await connection.execute(
        update(CLIENTS).where(CLIENTS.c.login == "tally.balance").values(balance=Decimal(5))
    )
    # then no tally row is touched (on PostgreSQL: not even rewritten with the same count)
    assert (await connection.execute(text(version))).scalars().all() == before


async def test_demo_data_loaded_in_bulk_is_tallied(scratch_url: str) -> None:
    engine = create_engine(scratch_url)
    try:
        await seed_demo_data(engine, clients=700, seed=5, now=NOW)
        async with engine.connect() as connection:
            tallied, counted = await tallies_and_counts(connection)
        assert sum(n for key, n in tallied.items() if key[0] == "all") == 700
        assert tallied == counted
    finally:
        await engine.dispose()
