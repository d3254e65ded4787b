"""A request gives its read connection back before a long wait (a password scoring's turn)."""

from sqlalchemy import QueuePool, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.session import SharedSession, create_sessionmaker


async def test_idle_gives_the_read_connection_back_to_the_pool(engine: AsyncEngine) -> None:
    db = SharedSession(create_sessionmaker(engine))
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    before = pool.checkedout()
    # given a request that read through the driver (its token, say)
    assert [tuple(row) for row in await db.fetch_all(select(literal(1)))] == [(1,)]
    assert pool.checkedout() == before + 1
    # when it is about to wait for something that needs no database
    await db.idle()
    # then it holds no connection meanwhile
    assert pool.checkedout() == before
    # and its next read takes one again
    assert [tuple(row) for row in await db.fetch_all(select(literal(2)))] == [(2,)]
    await db.finish()
    assert pool.checkedout() == before
