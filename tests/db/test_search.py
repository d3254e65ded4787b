"""Substring search finds what the clients hold now, on both databases (SQLite through its
full-text index, which triggers keep)."""

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import Client
from db.search import SearchMatch

CLIENTS = Client.__table__


async def found(connection: AsyncConnection, text: str) -> list[str]:
    rows = await connection.execute(
        select(CLIENTS.c.login).where(SearchMatch(text)).order_by(CLIENTS.c.login)
    )
    return list(rows.scalars())


async def test_search_follows_inserts_updates_and_deletes(connection: AsyncConnection) -> None:
    # given two clients
    await connection.execute(
        insert(CLIENTS),
        [
            {
                "login": "zq.one",
                "password_hash": "x",
                "email": "Zq.Mail@Example.com",
                "name": "Quentin Zork",
                "currency": "EUR",
            },
            {
                "login": "zq.two",
                "password_hash": "x",
                "email": "two@example.com",
                "name": "100% Zq_Ltd",
                "currency": "EUR",
            },
        ],
    )
    # then each field is searched, in any case, and wildcards are text
    assert await found(connection, "ZQ.MAIL") == ["zq.one"]
    assert await found(connection, "quentin z") == ["zq.one"]
    assert await found(connection, "zq.") == ["zq.one", "zq.two"]
    assert await found(connection, "100%") == ["zq.two"]
    assert await found(connection, "q_l") == ["zq.two"]
    assert await found(connection, "0% z") == ["zq.two"]
    assert await found(connection, "zork\x1f") == []  # no match across two fields
    assert await found(connection, "zorkzq") == []
    # when a name changes and a client goes
    await connection.execute(
        update(CLIENTS).where(CLIENTS.c.login == "zq.one").values(name="Renamed Person")
    )
    await connection.execute(delete(CLIENTS).where(CLIENTS.c.login == "zq.two"))
    # then the search sees it at once
    assert await found(connection, "quentin") == []
    assert await found(connection, "renamed pers") == ["zq.one"]
    assert await found(connection, "100%") == []


async def test_on_sqlite_a_search_reads_the_full_text_index(connection: AsyncConnection) -> None:
    # (PostgreSQL has its trigram index; SQLite needs the FTS table to be planned first: once
    # a "= 1" after the condition made it scan the whole list in date order instead)
    statement = (
        select(CLIENTS.c.id)
        .where(SearchMatch("kemi.okafor"))
        .order_by(CLIENTS.c.created_at.desc(), CLIENTS.c.id.desc())
        .limit(21)
    )
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    assert "= 1" not in str(compiled)
    if connection.dialect.name == "sqlite":
        plan = [row[3] for row in await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
        assert any("client_search VIRTUAL TABLE INDEX" in step for step in plan)
        assert not any(step.startswith("SCAN clients") for step in plan)
