"""Request-scoped dataloaders: one batched statement per (entity, key) per request.

Each loader is named after what it returns and what it is keyed by. A batch function returns
its results in key order, with None (or an empty list) where a key found nothing.
"""

from collections import defaultdict
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar

from aiodataloader import DataLoader
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode
from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.sql.elements import BindParameter, ColumnElement, KeyedColumnElement

from db.direct import Shaped, light_rows
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
    MailMessage,
    Package,
    PackagePrice,
    StaffUser,
    client_categories,
    client_departments,
)
from db.queries import AnyRow, AnySelect, select_clients, select_staff
from db.session import SharedSession
from gql.pagination import PageRequest, fetch_pages
from services.login_details import KIND as LOGIN_DETAILS

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")
Rows = list[AnyRow]
# aiodataloader's batch function: keys in, results in key order out.
BatchFn = Callable[[list[Any]], Coroutine[Any, Any, list[Any]]]
# (owner id, page arguments, ordering) -> (rows of that page, whether more follow)
PageKey = tuple[int, PageRequest, Ordering]
Page = tuple[Rows, bool]
# A ledger's entries by kind and period: (kinds, sorted; from; to), the period [from, to)
EntryFilter = tuple[tuple[str, ...], datetime | None, datetime | None]


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


def selected_names(info: Any) -> set[str]:
    """Every field name selected anywhere below this field (fragments followed)."""
    names: set[str] = set()
    fragments = info._raw_info.fragments
    seen: set[str] = set()
    pending = [node.selection_set for node in info._raw_info.field_nodes]
    while pending:
        selection_set = pending.pop()
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
                pending.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    return names


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
    # the same, by kind and period: every client asking for one filter in one statement
    filtered_entries_page_by_client_id: DataLoader[
        tuple[int, PageRequest, Ordering, EntryFilter], Page
    ]
    filtered_entry_count_by_client_id: DataLoader[tuple[int, EntryFilter], int]
    credit_entry_by_id: DataLoader[int, AnyRow | None]
    reversal_by_entry_id: DataLoader[int, AnyRow | None]
    credit_note_lines_by_entry_id: DataLoader[int, Rows]
    login_details_by_client_id: DataLoader[int, AnyRow | None]

    def clear_all(self) -> None:
        """Forget everything loaded so far (after a change)."""
        for name in self.__dataclass_fields__:
            getattr(self, name).clear_all()


# The loaders' statements, built once per process: each takes its keys as one expanding
# parameter, so a request only fills in values (see db.direct.Shaped).
KEYS: BindParameter[Any] = bindparam("keys", expanding=True)


def _by(query: AnySelect, column: KeyedColumnElement[Any]) -> Shaped:
    return Shaped(query.where(column.in_(KEYS)))


def _allowed(association: Table, model: type[Department] | type[Category]) -> Shaped:
    """What clients may access: rows of `model` through `association`, by name."""
    target = next(iter(association.c[name] for name in association.c.keys() if name != "client_id"))
    return Shaped(
        select(association.c.client_id, model.id, model.name)
        .join(model, model.id == target)
        .where(association.c.client_id.in_(KEYS))
        .order_by(model.name)
    )


def entry_filter(filter: EntryFilter) -> list[ColumnElement[bool]]:
    """Ledger entries of the filter's kinds (any, if none) made in its period."""
    kinds, start, end = filter
    conditions: list[ColumnElement[bool]] = []
    if kinds:
        conditions.append(CreditEntry.__table__.c.kind.in_(kinds))
    if start is not None:
        conditions.append(CreditEntry.__table__.c.created_at >= start)
    if end is not None:
        conditions.append(CreditEntry.__table__.c.created_at < end)
    return conditions


def _count(column: KeyedColumnElement[Any]) -> Shaped:
    return Shaped(select(column, func.count()).where(column.in_(KEYS)).group_by(column))


_clients = Client.__table__.c
_entries = CreditEntry.__table__.c
CLIENTS_BY_ID = _by(select_clients(), _clients.id)
CLIENTS_BY_LOGIN = _by(select_clients(), _clients.login)
STAFF_BY_ID = _by(select_staff(), StaffUser.__table__.c.id)
CONNECTIONS_BY_CLIENT = _by(
    select(ClientConnection.__table__).order_by(ClientConnection.client_id, ClientConnection.type),
    ClientConnection.__table__.c.client_id,
)
CUSTOM_FIELD_VALUES_BY_CLIENT = _by(
    select(CustomFieldValue.__table__), CustomFieldValue.__table__.c.client_id
)
CUSTOM_FIELD_DEFINITIONS = Shaped(
    select(CustomFieldDefinition.__table__).order_by(
        CustomFieldDefinition.position, CustomFieldDefinition.id
    )
)
DEPARTMENTS_BY_CLIENT = _allowed(client_departments, Department)
CATEGORIES_BY_CLIENT = _allowed(client_categories, Category)
PACKAGE_PRICES_BY_CURRENCY = Shaped(
    select(
        PackagePrice.currency,
        PackagePrice.amount,
        Package.id,
        Package.name,
        Package.description,
        Package.is_active,
    )
    .join(Package, Package.id == PackagePrice.package_id)
    .where(PackagePrice.currency.in_(KEYS), Package.is_active.is_(True))
    .order_by(Package.name)
)
PACKAGE_PRICES_BY_PACKAGE = _by(
    select(PackagePrice.__table__).order_by(PackagePrice.currency),
    PackagePrice.__table__.c.package_id,
)
PACKAGES_BY_ID = _by(select(Package.__table__), Package.__table__.c.id)
SUB_ACCOUNTS = select_clients()
SUB_ACCOUNT_COUNTS = _count(_clients.parent_id)
CREDIT_ENTRIES = select(CreditEntry.__table__)
CREDIT_ENTRY_COUNTS = _count(_entries.client_id)
# A deleted client's entries are kept (services/clients.delete_clients) but are no live
# data: only entries of existing clients are found.
CREDIT_ENTRIES_BY_ID = _by(
    select(CreditEntry.__table__).where(_entries.client_id.in_(select(_clients.id))), _entries.id
)
REVERSALS_BY_ENTRY = _by(select(CreditEntry.__table__), _entries.reverses_id)
CREDIT_NOTE_LINES_BY_ENTRY = _by(
    select(CreditNoteLine.__table__).order_by(CreditNoteLine.entry_id, CreditNoteLine.position),
    CreditNoteLine.__table__.c.entry_id,
)


# Each client's newest login e-mail (at creation, or sent again)
_mail = MailMessage.__table__
LOGIN_DETAILS_BY_CLIENT = Shaped(
    select(_mail).where(
        _mail.c.id.in_(
            select(func.max(_mail.c.id))
            .where(_mail.c.client_id.in_(KEYS), _mail.c.kind == LOGIN_DETAILS)
            .group_by(_mail.c.client_id)
        )
    )
)


def create_loaders(db: SharedSession) -> Loaders:
    """Fresh loaders (and so a fresh cache) for one request."""

    async def rows(statement: Shaped, keys: Sequence[Any]) -> Rows:
        found = await db.fetch_all(statement, {"keys": list(keys)})
        return light_rows(statement.columns, found)

    def one_per_key(statement: Shaped, key: str) -> BatchFn:
        by = itemgetter(statement.columns.index(key))

        async def load(keys: Sequence[Any]) -> list[AnyRow | None]:
            return in_key_order(keys, await rows(statement, keys), by)

        return load

    def many_per_key(statement: Shaped, key: str) -> BatchFn:
        by = itemgetter(statement.columns.index(key))

        async def load(keys: Sequence[Any]) -> list[Rows]:
            return grouped_by_key(keys, await rows(statement, keys), by)

        return load

    def count_per_key(statement: Shaped) -> BatchFn:
        async def load(keys: Sequence[int]) -> list[int]:
            found = await db.fetch_all(statement, {"keys": list(keys)})
            counts: dict[Any, int] = {owner: n for owner, n in found}
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

    async def filtered_entries(
        keys: Sequence[tuple[int, PageRequest, Ordering, EntryFilter]],
    ) -> list[Page]:
        by_request: dict[tuple[PageRequest, Ordering, EntryFilter], list[int]] = defaultdict(list)
        for owner, page, ordering, filter in keys:
            by_request[(page, ordering, filter)].append(owner)
        found: dict[Any, Page] = {}
        for (page, ordering, filter), owners in by_request.items():
            query = CREDIT_ENTRIES.where(*entry_filter(filter))
            fetched = await fetch_pages(
                db, query, _entries.client_id, owners, ordering, page, kept=False
            )
            for owner, result in fetched.items():
                found[(owner, page, ordering, filter)] = result
        return [found[key] for key in keys]

    async def filtered_entry_counts(keys: Sequence[tuple[int, EntryFilter]]) -> list[int]:
        by_filter: dict[EntryFilter, list[int]] = defaultdict(list)
        for owner, filter in keys:
            by_filter[filter].append(owner)
        counts: dict[tuple[int, EntryFilter], int] = {}
        for filter, owners in by_filter.items():
            statement = (
                select(_entries.client_id, func.count())
                .where(_entries.client_id.in_(owners), *entry_filter(filter))
                .group_by(_entries.client_id)
            )
            for owner, n in await db.fetch_all(statement):
                counts[(owner, filter)] = int(n)
        return [counts.get(key, 0) for key in keys]

    async def all_definitions(keys: Sequence[str]) -> list[Rows]:
        found = await db.fetch_all(CUSTOM_FIELD_DEFINITIONS)
        definitions = light_rows(CUSTOM_FIELD_DEFINITIONS.columns, found)
        return [definitions for _ in keys]

    return Loaders(
        client_by_id=DataLoader(one_per_key(CLIENTS_BY_ID, "id")),
        client_by_login=DataLoader(one_per_key(CLIENTS_BY_LOGIN, "login")),
        staff_user_by_id=DataLoader(one_per_key(STAFF_BY_ID, "id")),
        connections_by_client_id=DataLoader(many_per_key(CONNECTIONS_BY_CLIENT, "client_id")),
        custom_field_values_by_client_id=DataLoader(
            many_per_key(CUSTOM_FIELD_VALUES_BY_CLIENT, "client_id")
        ),
        custom_field_definitions=DataLoader(all_definitions),
        departments_by_client_id=DataLoader(many_per_key(DEPARTMENTS_BY_CLIENT, "client_id")),
        categories_by_client_id=DataLoader(many_per_key(CATEGORIES_BY_CLIENT, "client_id")),
        package_prices_by_currency=DataLoader(many_per_key(PACKAGE_PRICES_BY_CURRENCY, "currency")),
        package_prices_by_package_id=DataLoader(
            many_per_key(PACKAGE_PRICES_BY_PACKAGE, "package_id")
        ),
        package_by_id=DataLoader(one_per_key(PACKAGES_BY_ID, "id")),
        sub_accounts_page_by_parent_id=DataLoader(pages(SUB_ACCOUNTS, _clients.parent_id)),
        sub_account_count_by_parent_id=DataLoader(count_per_key(SUB_ACCOUNT_COUNTS)),
        credit_entries_page_by_client_id=DataLoader(pages(CREDIT_ENTRIES, _entries.client_id)),
        credit_entry_count_by_client_id=DataLoader(count_per_key(CREDIT_ENTRY_COUNTS)),
        filtered_entries_page_by_client_id=DataLoader(filtered_entries),
        filtered_entry_count_by_client_id=DataLoader(filtered_entry_counts),
        credit_entry_by_id=DataLoader(one_per_key(CREDIT_ENTRIES_BY_ID, "id")),
        reversal_by_entry_id=DataLoader(one_per_key(REVERSALS_BY_ENTRY, "reverses_id")),
        credit_note_lines_by_entry_id=DataLoader(
            many_per_key(CREDIT_NOTE_LINES_BY_ENTRY, "entry_id")
        ),
        login_details_by_client_id=DataLoader(one_per_key(LOGIN_DETAILS_BY_CLIENT, "client_id")),
    )
