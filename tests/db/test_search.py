"""Substring search finds what the clients hold now, on both databases (SQLite through its
full-text index, which triggers keep)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select, delete, insert, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db import search
from db.models import Client
from db.search import SearchMatch, is_common, sqlite_search_page

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


def newest_first_page(match: SearchMatch) -> Select[Any]:
    return (
        select(CLIENTS.c.login, CLIENTS.c.created_at, CLIENTS.c.id)
        .where(match)
        .order_by(CLIENTS.c.created_at.desc(), CLIENTS.c.id.desc())
        .limit(literal_column("21"))
    )


def client_name(i: int) -> str:
    return " ".join(
        word
        for word, present in (
            ("Common", i % 3 == 0),
            ("Fresh", i >= 297 or i < 30),
            ("Rarity", i == 100),
            ("Ltd", True),
        )
        if present
    )


async def test_on_sqlite_a_common_text_walks_the_list_and_a_rare_one_looks_up(
    connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 300 clients: one in three "Common", the 3 newest and 30 oldest "Fresh", one "Rarity"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await connection.execute(
        insert(CLIENTS),
        [
            {
                "login": f"walk.{i:03}",
                "password_hash": "x",
                "email": f"w{i}@example.com",
                "name": client_name(i),
                "currency": "EUR",
                "created_at": start + timedelta(minutes=i),
            }
            for i in range(300)
        ],
    )
    # and a walk that stops 50 clients down
    monkeypatch.setattr(search, "WALKED", 50)
    newest = [i for i in reversed(range(300))]
    for term, common in (("common", True), ("fresh", True), ("rarity", False), ("absent", False)):
        match = SearchMatch(term)
        # then the sample tells a common text from a rare one (on SQLite; PostgreSQL's planner
        # chooses by itself)
        assert bool(await connection.scalar(select(is_common(match)))) == common
        statement = newest_first_page(match)
        if connection.dialect.name == "sqlite":
            statement = sqlite_search_page(
                statement,
                lambda source: [source.c.created_at.desc(), source.c.id.desc()],
            )
        # and either way the page is the first 21 matches: "fresh" has 3 in the walk, and the
        # look-up finds the others
        expected = [f"walk.{i:03}" for i in newest if term in client_name(i).lower()][:21]
        assert list((await connection.execute(statement)).scalars()) == expected, term
    if connection.dialect.name != "sqlite":
        return
    # and the plan has both ways: the walk reads a range of the index holding the search text
    # (never the table in full), the other the FTS index, without sorting all
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    plan = [row[3] for row in await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    assert "SEARCH clients USING INDEX ix_clients_created_at_id_search_text (created_at>?)" in plan
    assert any("client_search VIRTUAL TABLE INDEX" in step for step in plan)
    assert "SEARCH clients USING INTEGER PRIMARY KEY (rowid=?)" in plan
    assert not [s for s in plan if s.startswith("SCAN clients") and "USING" not in s]
