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
from db.models import (
    CONNECTION_BITS,
    Client,
    ClientConnection,
    ClientPairTally,
    ClientTally,
    StaffUser,
)
from db.session import create_engine

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CLIENTS = Client.__table__
Key = tuple[str, ...]


def recount(
    rows: list[tuple[int, ClientStatus, int | None, str | None, str, int | None]],
    types: dict[int, set[str]],
) -> Counter[Key]:
    """What the tallies should hold, from (id, status, manager_id, country, currency,
    parent_id) and each client's connection types: single dimensions (a client once per
    connection type it has), and (pair tallies) each ordered pair of dimensions but "all"."""
    counts: Counter[Key] = Counter()
    for id_, status, manager_id, country, currency, parent_id in rows:
        values = [
            [("manager", "" if manager_id is None else str(manager_id))],
            [("country", country or "")],
            [("currency", currency)],
            [("sub_account", "0" if parent_id is None else "1")],
            [("connection", type_) for type_ in sorted(types.get(id_, ()))],
        ]
        counts[("all", "", status.value)] += 1
        for choices in values:
            for dimension, value in choices:
                counts[(dimension, value, status.value)] += 1
        for first, second in permutations(values, 2):
            for by in first:
                for of in second:
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
        select(
            Client.id,
            Client.status,
            Client.manager_id,
            Client.country,
            Client.currency,
            Client.parent_id,
        )
    )
    types: dict[int, set[str]] = {}
    for client_id, type_ in await db.execute(
        select(ClientConnection.client_id, ClientConnection.type)
    ):
        types.setdefault(client_id, set()).add(type_.value)
    # and each client's bits are its connections' types
    masks = dict((await db.execute(select(CLIENTS.c.id, CLIENTS.c.connection_types))).all())
    assert masks == {pk: sum(CONNECTION_BITS[t] for t in types.get(pk, ())) for pk in masks}
    return tallied, recount([tuple(row) for row in rows], types)


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
        action = rng.choice(
            [
                "insert",
                "insert",
                "bulk_insert",
                "update",
                "bulk",
                "move",
                "delete",
                "connect",
                "connect",
                "disconnect",
                "retype",
            ]
        )
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
        elif action in ("connect", "disconnect", "retype"):
            held = [
                (row.id, row.client_id, row.type.value)
                for row in await connection.execute(select(ClientConnection))
            ]
            if action == "connect":  # one or two at once, as a statement
                owner = rng.choice(ids)
                have = {t for _, c, t in held if c == owner}
                new = [t for t in CONNECTION_BITS if t not in have][: rng.randint(1, 2)]
                if new:
                    await connection.execute(
                        insert(ClientConnection),
                        [{"client_id": owner, "type": t, "status": "ONLINE"} for t in new],
                    )
            elif held and action == "disconnect":
                await connection.execute(
                    delete(ClientConnection).where(ClientConnection.id == rng.choice(held)[0])
                )
            elif held:  # another type, or another client
                pk, owner, _ = rng.choice(held)
                others = {t for _, c, t in held if c == owner}
                free = [t for t in CONNECTION_BITS if t not in others]
                if free:
                    await connection.execute(
                        update(ClientConnection)
                        .where(ClientConnection.id == pk)
                        .values(type=rng.choice(free))
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
