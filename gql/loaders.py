"""Request-scoped dataloaders: one batched statement per (entity, key) per request.

Each loader is named after what it returns and what it is keyed by. A batch function returns
its results in key order, with None (or an empty list) where a key found nothing.
"""

from collections import defaultdict
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import Table, func, select
from sqlalchemy.sql.elements import KeyedColumnElement

from db.keyset import Ordering
from db.models import (
    Category,
    Client,
    ClientConnection,
    CreditEntry,
    CreditNoteLine,
    CustomFieldDefinition,
    CustomFieldValue,
    Department,
    Package,
    PackagePrice,
    StaffUser,
    client_categories,
    client_departments,
)
from db.queries import AnyRow, AnySelect, select_clients, select_staff
from db.session import SharedSession
from gql.pagination import PageRequest, fetch_pages

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")
Rows = list[AnyRow]
# aiodataloader's batch function: keys in, results in key order out.
BatchFn = Callable[[list[Any]], Coroutine[Any, Any, list[Any]]]
# (owner id, page arguments, ordering) -> (rows of that page, whether more follow)
PageKey = tuple[int, PageRequest, Ordering]
Page = tuple[Rows, bool]


def now_or_later(loader: DataLoader[K, V], key: K, convert: Callable[[V], T]) -> Any:
    """`convert(value)` for `key`: at once if the loader already holds the value (loaded or
    primed earlier in the request), else an awaitable of it. A resolver that answers at once
    spares graphql-core a task per object, which for a page of 100 rows is most of its time."""
    future = loader.load(key)
    if future.done() and not future.cancelled() and future.exception() is None:
        return convert(future.result())

    async def later() -> T:
        return convert(await future)

    return later()


def in_key_order(keys: Sequence[K], rows: Sequence[V], key: Callable[[V], K]) -> list[V | None]:
    """`rows` rearranged to match `keys`, None where a key found nothing."""
    by_key = {key(row): row for row in rows}
    return [by_key.get(k) for k in keys]


def grouped_by_key(keys: Sequence[K], rows: Sequence[V], key: Callable[[V], K]) -> list[list[V]]:
    """`rows` grouped per key, in key order, [] where a key found nothing."""
    groups: dict[K, list[V]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [groups.get(k, []) for k in keys]


@dataclass(frozen=True, slots=True)
class Loaders:
    """The loaders of one request; built with the request's session by `create_loaders`."""

    client_by_id: DataLoader[int, AnyRow | None]
    client_by_login: DataLoader[str, AnyRow | None]
    staff_user_by_id: DataLoader[int, AnyRow | None]
    connections_by_client_id: DataLoader[int, Rows]
    custom_field_values_by_client_id: DataLoader[int, Rows]
    custom_field_definitions: DataLoader[str, Rows]  # the one key is "all"
    departments_by_client_id: DataLoader[int, Rows]
    categories_by_client_id: DataLoader[int, Rows]
    package_prices_by_currency: DataLoader[str, Rows]
    package_prices_by_package_id: DataLoader[int, Rows]
    package_by_id: DataLoader[int, AnyRow | None]
    sub_accounts_page_by_parent_id: DataLoader[PageKey, Page]
    sub_account_count_by_parent_id: DataLoader[int, int]
    credit_entries_page_by_client_id: DataLoader[PageKey, Page]
    credit_entry_count_by_client_id: DataLoader[int, int]
    credit_entry_by_id: DataLoader[int, AnyRow | None]
    reversal_by_entry_id: DataLoader[int, AnyRow | None]
    credit_note_lines_by_entry_id: DataLoader[int, Rows]

    def clear_all(self) -> None:
        """Forget everything loaded so far (after a change)."""
        for name in self.__dataclass_fields__:
            getattr(self, name).clear_all()


def create_loaders(db: SharedSession) -> Loaders:
    """Fresh loaders (and so a fresh cache) for one request."""

    async def rows(query: AnySelect) -> Rows:
        return list((await db.execute(query)).all())

    def one_per_key(query: Callable[[Sequence[Any]], AnySelect], key: str) -> BatchFn:
        async def load(keys: Sequence[Any]) -> list[AnyRow | None]:
            return in_key_order(keys, await rows(query(keys)), lambda row: row._mapping[key])

        return load

    def many_per_key(query: Callable[[Sequence[Any]], AnySelect], key: str) -> BatchFn:
        async def load(keys: Sequence[Any]) -> list[Rows]:
            return grouped_by_key(keys, await rows(query(keys)), lambda row: row._mapping[key])

        return load

    def count_per_key(column: KeyedColumnElement[Any]) -> BatchFn:
        async def load(keys: Sequence[int]) -> list[int]:
            query = select(column, func.count()).where(column.in_(keys)).group_by(column)
            counts: dict[Any, int] = {owner: n for owner, n in await db.execute(query)}
            return [counts.get(key, 0) for key in keys]

        return load

    def pages(query: AnySelect, partition: KeyedColumnElement[Any]) -> BatchFn:
        async def load(keys: Sequence[PageKey]) -> list[Page]:
            by_request: dict[tuple[PageRequest, Ordering], list[int]] = defaultdict(list)
            for owner, page, ordering in keys:
                by_request[(page, ordering)].append(owner)
            found: dict[PageKey, Page] = {}
            for (page, ordering), owners in by_request.items():
                fetched = await fetch_pages(db, query, partition, owners, ordering, page)
                for owner, result in fetched.items():
                    found[(owner, page, ordering)] = result
            return [found[key] for key in keys]

        return load

    def allowed(
        association: Table, model: type[Department] | type[Category]
    ) -> Callable[[Sequence[int]], AnySelect]:
        """What clients may access: rows of `model` through `association`, by name."""
        target = next(
            iter(association.c[name] for name in association.c.keys() if name != "client_id")
        )
        return lambda ids: (
            select(association.c.client_id, model.id, model.name)
            .join(model, model.id == target)
            .where(association.c.client_id.in_(ids))
            .order_by(model.name)
        )

    async def all_definitions(keys: Sequence[str]) -> list[Rows]:
        definitions = await rows(
            select(CustomFieldDefinition.__table__).order_by(
                CustomFieldDefinition.position, CustomFieldDefinition.id
            )
        )
        return [definitions for _ in keys]

    clients = Client.__table__.c
    entries = CreditEntry.__table__.c
    return Loaders(
        client_by_id=DataLoader(
            one_per_key(lambda ids: select_clients().where(Client.id.in_(ids)), "id")
        ),
        client_by_login=DataLoader(
            one_per_key(lambda logins: select_clients().where(Client.login.in_(logins)), "login")
        ),
        staff_user_by_id=DataLoader(
            one_per_key(lambda ids: select_staff().where(StaffUser.id.in_(ids)), "id")
        ),
        connections_by_client_id=DataLoader(
            many_per_key(
                lambda ids: (
                    select(ClientConnection.__table__)
                    .where(ClientConnection.client_id.in_(ids))
                    .order_by(ClientConnection.client_id, ClientConnection.type)
                ),
                "client_id",
            )
        ),
        custom_field_values_by_client_id=DataLoader(
            many_per_key(
                lambda ids: select(CustomFieldValue.__table__).where(
                    CustomFieldValue.client_id.in_(ids)
                ),
                "client_id",
            )
        ),
        custom_field_definitions=DataLoader(all_definitions),
        departments_by_client_id=DataLoader(
            many_per_key(allowed(client_departments, Department), "client_id")
        ),
        categories_by_client_id=DataLoader(
            many_per_key(allowed(client_categories, Category), "client_id")
        ),
        package_prices_by_currency=DataLoader(
            many_per_key(
                lambda currencies: (
                    select(
                        PackagePrice.currency,
                        PackagePrice.amount,
                        Package.id,
                        Package.name,
                        Package.description,
                        Package.is_active,
                    )
                    .join(Package, Package.id == PackagePrice.package_id)
                    .where(PackagePrice.currency.in_(currencies), Package.is_active.is_(True))
                    .order_by(Package.name)
                ),
                "currency",
            )
        ),
        package_prices_by_package_id=DataLoader(
            many_per_key(
                lambda ids: (
                    select(PackagePrice.__table__)
                    .where(PackagePrice.package_id.in_(ids))
                    .order_by(PackagePrice.currency)
                ),
                "package_id",
            )
        ),
        package_by_id=DataLoader(
            one_per_key(lambda ids: select(Package.__table__).where(Package.id.in_(ids)), "id")
        ),
        sub_accounts_page_by_parent_id=DataLoader(pages(select_clients(), clients.parent_id)),
        sub_account_count_by_parent_id=DataLoader(count_per_key(clients.parent_id)),
        credit_entries_page_by_client_id=DataLoader(
            pages(select(CreditEntry.__table__), entries.client_id)
        ),
        credit_entry_count_by_client_id=DataLoader(count_per_key(entries.client_id)),
        # A deleted client's entries are kept (services/clients.delete_clients) but are no
        # live data: only entries of existing clients are found.
        credit_entry_by_id=DataLoader(
            one_per_key(
                lambda ids: select(CreditEntry.__table__).where(
                    CreditEntry.id.in_(ids), entries.client_id.in_(select(clients.id))
                ),
                "id",
            )
        ),
        reversal_by_entry_id=DataLoader(
            one_per_key(
                lambda ids: select(CreditEntry.__table__).where(CreditEntry.reverses_id.in_(ids)),
                "reverses_id",
            )
        ),
        credit_note_lines_by_entry_id=DataLoader(
            many_per_key(
                lambda ids: (
                    select(CreditNoteLine.__table__)
                    .where(CreditNoteLine.entry_id.in_(ids))
                    .order_by(CreditNoteLine.entry_id, CreditNoteLine.position)
                ),
                "entry_id",
            )
        ),
    )
