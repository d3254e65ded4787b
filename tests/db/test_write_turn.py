"""SQLite's writers of one process take turns, in order, before they ask SQLite for its write
lock (issue 17: no lock storms); PostgreSQL's do not wait for each other (they lock rows)."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from db.session import create_sessionmaker, write_turn


async def test_writers_take_turns_on_sqlite_only(engine: AsyncEngine, backend: str) -> None:
    sessions = create_sessionmaker(engine)
    entered: list[int] = []
    left: list[int] = []
    release = [asyncio.Event() for _ in range(3)]

    async def writer(n: int) -> None:
        async with sessions() as session, write_turn(session):
            entered.append(n)
            await release[n].wait()
            left.append(n)

    # given three changes that start together, the first holding on
    tasks = [asyncio.create_task(writer(n)) for n in range(3)]
    for _ in range(10):  # let every task run as far as it can
        await asyncio.sleep(0)
    # then on SQLite only the first is writing; on PostgreSQL all three are
    assert entered == ([0] if backend == "sqlite" else [0, 1, 2])
    # when the last one and then the first one finish
    release[2].set()
    release[0].set()
    for _ in range(10):
        await asyncio.sleep(0)
    # then on SQLite the second goes next (in the order they came), the third still waiting
    assert entered == ([0, 1] if backend == "sqlite" else [0, 1, 2])
    release[1].set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2]
    assert left == ([0, 1, 2] if backend == "sqlite" else [2, 0, 1])
