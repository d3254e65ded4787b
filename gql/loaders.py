"""Request-scoped dataloaders: one batched statement per (entity, key) per request."""

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client, StaffUser
from db.queries import select_clients, select_staff

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def in_key_order(keys: Sequence[K], rows: Sequence[V], key: Callable[[V], K]) -> list[V | None]:
    """`rows` rearranged to match `keys`, None where a key found nothing."""
    by_key = {key(row): row for row in rows}
    return [by_key.get(k) for k in keys]


@dataclass(frozen=True, slots=True)
class Loaders:
    """The loaders of one request; built with the request's session by `create_loaders`."""

    client_by_id: DataLoader[int, Row[Any] | None]
    client_by_login: DataLoader[str, Row[Any] | None]
    staff_user_by_id: DataLoader[int, Row[Any] | None]


def create_loaders(session: AsyncSession) -> Loaders:
    """Fresh loaders (and so a fresh cache) for one request."""

    async def clients_by_id(ids: Sequence[int]) -> list[Row[Any] | None]:
        rows = (await session.execute(select_clients().where(Client.id.in_(ids)))).all()
        return in_key_order(ids, rows, lambda row: row.id)

    async def clients_by_login(logins: Sequence[str]) -> list[Row[Any] | None]:
        rows = (await session.execute(select_clients().where(Client.login.in_(logins)))).all()
        return in_key_order(logins, rows, lambda row: row.login)

    async def staff_users_by_id(ids: Sequence[int]) -> list[Row[Any] | None]:
        rows = (await session.execute(select_staff().where(StaffUser.id.in_(ids)))).all()
        return in_key_order(ids, rows, lambda row: row.id)

    return Loaders(
        client_by_id=DataLoader(clients_by_id),
        client_by_login=DataLoader(clients_by_login),
        staff_user_by_id=DataLoader(staff_users_by_id),
    )
