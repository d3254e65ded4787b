"""Statements run straight on the driver (db/direct.py) answer what SQLAlchemy's own execution
answers, whatever values and list lengths they are given, as light rows."""

from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, bindparam
from sqlalchemy.ext.asyncio import AsyncConnection

from db import direct
from db.direct import Shaped, fetch_all, light_rows
from db.models import StaffUser
from db.queries import select_staff
from tests.factories import Factory

STAFF = StaffUser.__table__.c
# an expanding list, a plain value and a constant of the statement's own (the LIMIT's)
BY_IDS = Shaped(
    select_staff()
    .where(STAFF.id.in_(bindparam("keys", expanding=True)), STAFF.name != bindparam("not_named"))
    .order_by(STAFF.id)
    .limit(5)
)


async def test_a_shaped_statement_answers_as_sqlalchemy_for_any_values(
    connection: AsyncConnection, factory: Factory
) -> None:
    staff = [await factory.staff(name=f"Staff {n}") for n in range(4)]
    ids = [user.id for user in staff]
    asks: list[dict[str, Any]] = [
        {"keys": ids[:1], "not_named": "nobody"},
        {"keys": ids, "not_named": "Staff 2"},
        {"keys": ids[3:4], "not_named": "nobody"},  # a length seen before, other values
        {"keys": ids[1:3], "not_named": "nobody"},
        {"keys": ids[2:4], "not_named": "Staff 3"},
        {"keys": [], "not_named": "nobody"},
    ]
    for ask in asks:
        expected = (await connection.execute(BY_IDS.statement, ask)).all()
        found = light_rows(BY_IDS.columns, await fetch_all(connection, BY_IDS, ask))
        assert [tuple(row) for row in found] == [tuple(row) for row in expected]
        assert [row.name for row in found] == [row.name for row in expected]
        assert [row._mapping["id"] for row in found] == [row.id for row in expected]
    if connection.dialect.driver == "asyncpg":  # repeated lengths ran from a recipe
        assert (("keys", 1), ("not_named", -1)) in BY_IDS.recipes


# typed values that need their bind processors (an enum, a timestamp, JSON), and None
BY_ROLE = Shaped(
    select_staff()
    .where(
        STAFF.role == bindparam("role", type_=STAFF.role.type),
        STAFF.created_at <= bindparam("until", type_=STAFF.created_at.type),
        (bindparam("note", type_=JSON) != None) | STAFF.name.is_not(None),  # noqa: E711
    )
    .order_by(STAFF.id)
)


async def test_typed_values_and_none_are_bound_as_sqlalchemy_binds_them(
    connection: AsyncConnection, factory: Factory
) -> None:
    staff = [await factory.staff(name=f"Staff {n}") for n in range(3)]
    latest = max(user.created_at for user in staff)
    asks: list[dict[str, Any]] = [
        {"role": staff[0].role, "until": latest, "note": {"a": [1, "x"]}},
        {"role": staff[0].role, "until": latest, "note": None},
        {"role": staff[0].role, "until": latest - timedelta(days=9999), "note": None},
    ]
    answers = []
    for ask in asks:
        expected = (await connection.execute(BY_ROLE.statement, ask)).all()
        found = await direct.write(connection, BY_ROLE, ask)
        assert [tuple(row) for row in found] == [tuple(row) for row in expected]
        answers.append(len(found))
    assert answers[0] >= 3
    assert answers[2] == 0
    if connection.dialect.driver == "asyncpg":
        # given None or a value for the same name, the same recipe makes the arguments
        assert len(BY_ROLE.recipes) == 1
