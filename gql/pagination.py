"""Relay connections with keyset pagination: page arguments, opaque cursors, PageInfo.

A cursor is base64url(JSON) of the ordering it belongs to, the row's sort values and its id.
Pages are fetched with `WHERE <position> ORDER BY <keys>, id LIMIT n + 1`: no OFFSET, so a
page deep in the list costs what the first one costs.
"""

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, TypeVar

import orjson
import strawberry
from sqlalchemy import ColumnElement, func, select, union_all
from sqlalchemy.sql.elements import KeyedColumnElement

from db.keyset import Ordering
from db.queries import AnyRow, AnySelect
from db.session import SharedSession
from gql.errors import BadUserInput

NodeT = TypeVar("NodeT")
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


@strawberry.type(description="Where a page sits in the whole list (Relay).")
class PageInfo:
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge.")
    # Each direction is either known from the page's own query, or asked of the database
    # (only if selected): resolvers answer at once when they can, which keeps the whole
    # response synchronous.
    next_known: strawberry.Private[bool | None]
    next_check: strawberry.Private[Callable[[], Awaitable[bool]]]
    previous_known: strawberry.Private[bool | None]
    previous_check: strawberry.Private[Callable[[], Awaitable[bool]]]

    @strawberry.field(description="Whether rows follow this page (exact in both directions).")
    def has_next_page(self) -> bool:
        return self.next_check() if self.next_known is None else self.next_known  # type: ignore[return-value]

    @strawberry.field(description="Whether rows precede this page (exact in both directions).")
    def has_previous_page(self) -> bool:
        return self.previous_check() if self.previous_known is None else self.previous_known  # type: ignore[return-value]


@strawberry.type(description="One row of a page, with the cursor to continue from it.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="Opaque position of this row, for after/before.")
    node: NodeT = strawberry.field(description="The row.")


@strawberry.type(description="A page of a list, with cursors to walk it in either direction.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The rows of the page, in order.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more rows exist.")
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="The rows of the page without their cursors.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="How many rows the whole list has (counted only when asked for).")
    async def total_count(self) -> int:
        return await self.counter()


@dataclass(frozen=True, slots=True)
class Position:
    """A decoded cursor: the sort values of a row and its id."""

    values: tuple[Any, ...]
    id: int


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The Relay arguments of a connection field, checked."""

    size: int
    backwards: bool
    after: Position | None
    before: Position | None


def page_request(
    ordering: Ordering,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> PageRequest:
    """Check first/last/after/before against the rules and decode the cursors."""
    if first is not None and last is not None:
        raise BadUserInput("Give `first` or `last`, not both.", field="first")
    size = last if last is not None else first if first is not None else DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        name = "last" if last is not None else "first"
        raise BadUserInput(f"`{name}` must be between 1 and {MAX_PAGE_SIZE}.", field=name)
    return PageRequest(
        size=size,
        backwards=last is not None,
        after=decode_cursor(after, ordering, field="after") if after is not None else None,
        before=decode_cursor(before, ordering, field="before") if before is not None else None,
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def encode_cursor(ordering: Ordering, row: AnyRow) -> str:
    """The cursor of `row` in `ordering`."""
    mapping = row._mapping
    payload = [
        ordering.signature,
        [_json_value(mapping[key.field]) for key in ordering.keys],
        mapping[ordering.tiebreaker.key],
    ]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(cursor: str, ordering: Ordering, *, field: str) -> Position:
    """The position inside a cursor; a malformed or foreign cursor is a clear error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        signature, values, id_ = json.loads(raw)
        if not isinstance(values, list) or not isinstance(id_, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput(f"`{field}` is not a valid cursor.", field=field) from None
    if signature != ordering.signature or len(values) != len(ordering.keys):
        raise BadUserInput(
            f"`{field}` is a cursor of another ordering; use cursors from the same orderBy.",
            field=field,
        )
    try:
        parsed = tuple(
            None if value is None else key.parse(value)
            for key, value in zip(ordering.keys, values, strict=True)
        )
    except (ValueError, TypeError, ArithmeticError):
        raise BadUserInput(f"`{field}` is not a valid cursor.", field=field) from None
    return Position(parsed, id_)


def page_query(query: AnySelect, ordering: Ordering, page: PageRequest) -> AnySelect:
    """The SELECT of one page plus one row (which tells whether more follow)."""
    limit = page.size + 1
    order = ordering.order_by(backwards=page.backwards)
    position = page.after if page.before is None else page.before if page.after is None else None
    branches = None
    if position is not None:
        # Walking forwards from `after`, or backwards from `before`, the seek is "past" it.
        branches = ordering.seek_branches(position.values, position.id, backwards=page.backwards)
        if branches is not None and (page.before is None) == page.backwards:
            branches = None  # the one bound is on the far side: nothing to seek
    if branches is None:
        return bounded(query, ordering, page).order_by(*order).limit(limit)
    if len(branches) == 1:
        return query.where(branches[0]).order_by(*order).limit(limit)
    parts = [select(query.where(b).order_by(*order).limit(limit).subquery()) for b in branches]
    combined = union_all(*parts).subquery()
    return (
        select(combined)
        .order_by(*ordering.order_by(backwards=page.backwards, source=combined))
        .limit(limit)
    )


def bounded(query: AnySelect, ordering: Ordering, page: PageRequest) -> AnySelect:
    """`query` limited to the rows between the page's after and before cursors."""
    if page.after is not None:
        query = query.where(ordering.after(page.after.values, page.after.id))
    if page.before is not None:
        query = query.where(ordering.after(page.before.values, page.before.id, backwards=True))
    return query


async def paginate(
    db: SharedSession,
    query: AnySelect,
    ordering: Ordering,
    page: PageRequest,
    to_node: Callable[[AnyRow], NodeT],
) -> Connection[NodeT]:
    """One page of `query` (a filtered SELECT whose columns include the sort keys)."""
    rows = list((await db.execute(page_query(query, ordering, page))).all())
    more = len(rows) > page.size
    rows = rows[: page.size]
    if page.backwards:
        rows.reverse()
    return build_connection(db, query, ordering, page, rows, more, to_node)


def build_connection(
    db: SharedSession,
    query: AnySelect,
    ordering: Ordering,
    page: PageRequest,
    rows: Sequence[AnyRow],
    more: bool,
    to_node: Callable[[AnyRow], NodeT],
    counter: Callable[[], Awaitable[int]] | None = None,
) -> Connection[NodeT]:
    """The Connection for fetched `rows`; pageInfo's other direction and totalCount are
    asked of the database only if the caller selects them."""

    async def exists(condition: ColumnElement[bool]) -> bool:
        return bool(await db.scalar(select(query.where(condition).exists())))

    def before_known() -> bool | None:
        if page.backwards and more:
            return True
        return False if page.after is None else None

    async def rows_before() -> bool:
        assert page.after is not None
        position = page.after
        return await exists(
            ordering.after(position.values, position.id, backwards=True, inclusive=True)
        )

    def after_known() -> bool | None:
        if not page.backwards and more:
            return True
        return False if page.before is None else None

    async def rows_after() -> bool:
        assert page.before is not None
        position = page.before
        return await exists(ordering.after(position.values, position.id, inclusive=True))

    async def count() -> int:
        return int(await db.scalar(select(func.count()).select_from(query.subquery())) or 0)

    edges = [Edge(cursor=encode_cursor(ordering, row), node=to_node(row)) for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
            next_known=after_known(),
            next_check=rows_after,
            previous_known=before_known(),
            previous_check=rows_before,
        ),
        counter=counter or count,
    )


async def fetch_pages(
    db: SharedSession,
    query: AnySelect,
    partition: KeyedColumnElement[Any],
    owners: Sequence[Any],
    ordering: Ordering,
    page: PageRequest,
) -> dict[Any, tuple[list[AnyRow], bool]]:
    """The same page of a list for many owners at once (one statement, a window function):
    per owner, its rows and whether more follow."""
    number = (
        func.row_number()
        .over(partition_by=partition, order_by=ordering.order_by(backwards=page.backwards))
        .label("_row_number")
    )
    inner = bounded(query.where(partition.in_(owners)), ordering, page).add_columns(number)
    ranked = inner.subquery()
    rows = (
        await db.execute(
            select(ranked)
            .where(ranked.c._row_number <= page.size + 1)
            .order_by(ranked.c[partition.key], ranked.c._row_number)
        )
    ).all()
    pages: dict[Any, tuple[list[AnyRow], bool]] = {owner: ([], False) for owner in owners}
    for row in rows:
        pages[row._mapping[partition.key]][0].append(row)
    for owner, (owned, _) in pages.items():
        more = len(owned) > page.size
        del owned[page.size :]
        if page.backwards:
            owned.reverse()
        pages[owner] = (owned, more)
    return pages
