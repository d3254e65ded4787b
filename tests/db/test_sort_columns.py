"""The columns kept for sorting (migration 0013) always say what they stand for, whatever
writes: the manager's name follows the staff table, the block's end the block."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.enums import StaffRole
from db.models import FAR_FUTURE, FAR_PAST, Client, StaffUser

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CLIENTS = Client.__table__


async def _staff(db: AsyncConnection, name: str) -> int:
    return int(
        await db.scalar(
            insert(StaffUser)
            .values(email=f"{name.lower()}@sort.test", name=name, role=StaffRole.MANAGER)
            .returning(StaffUser.id)
        )
    )


async def _client(db: AsyncConnection, login: str, manager_id: int | None) -> int:
    return int(
        await db.scalar(
            insert(CLIENTS)
            .values(
                login=login,
                password_hash="x",
                currency="EUR",
                email=f"{login}@example.org",
                manager_id=manager_id,
            )
            .returning(CLIENTS.c.id)
        )
    )


async def _names(db: AsyncConnection, *ids: int) -> list[str | None]:
    rows = dict((await db.execute(select(CLIENTS.c.id, CLIENTS.c.manager_name))).all())
    return [rows[pk] for pk in ids]


async def test_manager_name_follows_assignments_renames_and_removals(
    connection: AsyncConnection,
) -> None:
    # given two managers, a client of each and one without
    ada, bob = await _staff(connection, "Ada"), await _staff(connection, "Bob")
    one = await _client(connection, "sort-one", ada)
    two = await _client(connection, "sort-two", bob)
    none = await _client(connection, "sort-none", None)
    # then each client carries its manager's name from the insert on
    assert await _names(connection, one, two, none) == ["Ada", "Bob", None]
    # when a client changes manager, and a manager is renamed
    await connection.execute(update(CLIENTS).where(CLIENTS.c.id == none).values(manager_id=ada))
    await connection.execute(update(StaffUser).where(StaffUser.id == ada).values(name="Ada L."))
    # then every client of that manager follows
    assert await _names(connection, one, two, none) == ["Ada L.", "Bob", "Ada L."]
    # when a manager is removed (the clients' manager_id is set to NULL) or unassigned
    await connection.execute(delete(StaffUser).where(StaffUser.id == bob))
    await connection.execute(update(CLIENTS).where(CLIENTS.c.id == one).values(manager_id=None))
    # then the name goes too
    assert await _names(connection, one, two, none) == [None, None, "Ada L."]


async def test_block_end_is_far_past_without_a_block_and_far_future_without_an_end(
    connection: AsyncConnection,
) -> None:
    # given a client
    pk = await _client(connection, "sort-blocked", None)

    async def block_end() -> datetime:
        return (
            await connection.scalar(select(CLIENTS.c.block_ends_at).where(CLIENTS.c.id == pk))
        ).astimezone(UTC)

    where = CLIENTS.c.id == pk
    # then never blocked is "ended long ago"
    assert await block_end() == FAR_PAST
    # when blocked without an end, then with one, then unblocked
    await connection.execute(update(CLIENTS).where(where).values(blocked_at=NOW, block_reason="x"))
    assert await block_end() == FAR_FUTURE
    until = NOW + timedelta(days=3)
    await connection.execute(update(CLIENTS).where(where).values(blocked_until=until))
    assert await block_end() == until
    await connection.execute(
        update(CLIENTS).where(where).values(blocked_at=None, block_reason=None, blocked_until=None)
    )
    assert await block_end() == FAR_PAST
