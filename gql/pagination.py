"""Relay connections with keyset pagination: page arguments, opaque cursors, PageInfo.

A cursor is base64url(JSON) of the ordering it belongs to, the row's sort values and its id.
Pages are fetched with `WHERE <position> ORDER BY <keys>, id LIMIT n + 1`: no OFFSET, so a
page deep in the list costs what the first one costs.
"""

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar

import orjson
import strawberry
from sqlalchemy import ColumnElement, bindparam, func, literal_column, select, union_all
from sqlalchemy.sql.elements import BindParameter, KeyedColumnElement

from db.direct import Shaped, light_rows
from db.keyset import Branch, Ordering, parse_id
from db.queries import AnyRow, AnySelect
from db.search import sqlite_search_page
from db.session import SharedSession
from gql.errors import BadUserInput

NodeT = TypeVar("NodeT")
T = TypeVar("T")
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


# The page arguments of every connection field.
FirstArg = Annotated[
    int | None, strawberry.argument(description="Page size from the start (1-100, default 10).")
]
AfterArg = Annotated[str | None, strawberry.argument(description="Start after this cursor.")]
LastArg = Annotated[int | None, strawberry.argument(description="Page size from the end (1-100).")]
BeforeArg = Annotated[str | None, strawberry.argument(description="End before this cursor.")]


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
    values = [mapping[key.field] for key in ordering.keys]
    return encode_position(ordering.signature, values, mapping[ordering.tiebreaker.key])


def encode_position(signature: str, values: Sequence[Any], id_: Any) -> str:
    """The cursor of the row with sort `values` and id `id_` in the ordering `signature`."""
    payload = [signature, [_json_value(value) for value in values], id_]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


# Base64url without padding, as `encode_position` writes it; long enough for ten sort keys
# of the longest text columns, short enough that a made-up one costs nothing to refuse.
CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]*")
MAX_CURSOR_LENGTH = 4096


def decode_cursor(cursor: str, ordering: Ordering, *, field: str) -> Position:
    """The position inside a cursor; a malformed, tampered or foreign cursor is a clear error
    (BAD_USER_INPUT), never a query that fails: every value must be one its column holds."""
    invalid = BadUserInput(f"`{field}` is not a valid cursor.", field=field)
    if len(cursor) > MAX_CURSOR_LENGTH or not CURSOR_PATTERN.fullmatch(cursor):
        raise invalid
    try:
        # orjson, not json: it refuses NaN, lone surrogates and nesting past 1024 levels
        # (json.loads recurses until Python's stack runs out).
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
        raise invalid from None
    if not isinstance(payload, list) or len(payload) != 3:
        raise invalid
    signature, values, id_ = payload
    if not isinstance(signature, str) or not isinstance(values, list):
        raise invalid
    if signature != ordering.signature or len(values) != len(ordering.keys):
        raise BadUserInput(
            f"`{field}` is a cursor of another ordering; use cursors from the same orderBy.",
            field=field,
        )
    try:
        parsed = tuple(key.parse(value) for key, value in zip(ordering.keys, values, strict=True))
        position = Position(parsed, parse_id(id_))
    except (ValueError, TypeError, ArithmeticError):
        raise invalid from None
    return position


def page_query(query: AnySelect, ordering: Ordering, page: PageRequest) -> AnySelect:
    """The SELECT of one page plus one row (which tells whether more follow)."""
    # The LIMIT is written into the SQL, not bound: PostgreSQL plans a prepared statement with
    # `LIMIT $1` for any row count (or plans it anew on every run); pages have few sizes.
    limit: ColumnElement[int] = literal_column(str(int(page.size) + 1))
    order = ordering.order_by(backwards=page.backwards)
    position = page.after if page.before is None else page.before if page.after is None else None
    no_bounds = page.after is None and page.before is None
    # the one bound, if any, on the side the walk starts from: the page is "past" it
    seeking = position is not None and (page.before is None) != page.backwards
    if ordering.partitioned and (no_bounds or seeking):
        # each value of the first key is a branch (an index ordered by the keys after it),
        # merged here
        branches = ordering.partitions(
            position.values if position is not None else None,
            position.id if position is not None else None,
            backwards=page.backwards,
        )
        if branches is not None:
            return _merged(query, ordering, page, branches, limit)
    condition = query.whereclause  # made anew on each read: read once
    where = [condition] if condition is not None else []
    most = int(page.size) + 1
    if no_bounds:
        first = ordering.first_branches(backwards=page.backwards, where=where, most=most)
        if first is not None:
            return _merged(query, ordering, page, first, limit)
    branches = None
    if seeking:  # (a bound on the far side only stops the walk: nothing to seek)
        assert position is not None
        branches = ordering.seek_branches(
            position.values, position.id, backwards=page.backwards, where=where, most=most
        )
    if branches is None:
        return bounded(query, ordering, page).order_by(*order).limit(limit)
    return _merged(query, ordering, page, branches, limit)


def _merged(
    query: AnySelect,
    ordering: Ordering,
    page: PageRequest,
    branches: list[Branch],
    limit: ColumnElement[int],
) -> AnySelect:
    """The page from disjoint branches, each ordered (by the keys that vary in it) and
    limited on its own, so each is an index range scan; then merged."""

    branches = ordering.expanded(branches, backwards=page.backwards)

    def part(branch: Branch) -> AnySelect:
        order = ordering.after_first(branch.fixed).order_by(backwards=page.backwards)
        return query.where(branch.condition).order_by(*order).limit(limit)

    if len(branches) == 1:
        return part(branches[0])
    combined = union_all(*(select(part(branch).subquery()) for branch in branches)).subquery()
    return (
        select(combined)
        .order_by(*ordering.order_by(backwards=page.backwards, source=combined))
        .limit(limit)
    )


def dialect_page_query(
    query: AnySelect, ordering: Ordering, page: PageRequest, dialect: str
) -> AnySelect:
    """`page_query`; on SQLite, a search's page newest first (the default order) has two
    plans, for a common text and a rare one (db/search.py)."""
    statement = page_query(query, ordering, page)
    first = ordering.keys[0] if ordering.keys else None
    newest_first = first is not None and first.field == "created_at" and first.descending
    if dialect != "sqlite" or page.backwards or not newest_first:
        return statement
    return sqlite_search_page(
        statement, lambda source: ordering.order_by(backwards=page.backwards, source=source)
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
    counter: Callable[[], Awaitable[int]] | None = None,
) -> Connection[NodeT]:
    """One page of `query` (a filtered SELECT whose columns include the sort keys)."""
    rows = await db.rows(dialect_page_query(query, ordering, page, db.dialect_name))
    rows, more = trim_page(rows, page)
    return build_connection(db, query, ordering, page, rows, more, to_node, counter)


def trim_page(rows: list[T], page: PageRequest) -> tuple[list[T], bool]:
    """The rows of a page fetched with one row more, in display order, and whether more
    rows lie in the walking direction."""
    more = len(rows) > page.size
    rows = rows[: page.size]
    if page.backwards:
        rows.reverse()
    return rows, more


def build_connection(
    db: SharedSession,
    query: AnySelect | Callable[[], AnySelect],
    ordering: Ordering,
    page: PageRequest,
    rows: Sequence[AnyRow],
    more: bool,
    to_node: Callable[[AnyRow], NodeT],
    counter: Callable[[], Awaitable[int]] | None = None,
) -> Connection[NodeT]:
    """The Connection for fetched `rows`; pageInfo's other direction and totalCount are
    asked of the database only if the caller selects them. `query` may be a function that
    makes it: then it is built only if one of those is asked."""

    def whole() -> AnySelect:
        return query() if callable(query) else query

    async def rows_after() -> bool:
        return bool(await db.scalar(rows_after_statement(whole(), ordering, page)))

    async def rows_before() -> bool:
        return bool(await db.scalar(rows_before_statement(whole(), ordering, page)))

    async def count() -> int:
        return int(await db.scalar(count_statement(whole())) or 0)

    edges = [Edge(cursor=encode_cursor(ordering, row), node=to_node(row)) for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
            next_known=next_page_known(page, more),
            next_check=rows_after,
            previous_known=previous_page_known(page, more),
            previous_check=rows_before,
        ),
        counter=counter or count,
    )


def next_page_known(page: PageRequest, more: bool) -> bool | None:
    """Whether rows follow the page, if the page's own query tells; None when it does not."""
    if not page.backwards and more:
        return True
    return False if page.before is None else None


def previous_page_known(page: PageRequest, more: bool) -> bool | None:
    """Whether rows precede the page, if the page's own query tells; None when it does not."""
    if page.backwards and more:
        return True
    return False if page.after is None else None


def rows_after_statement(query: AnySelect, ordering: Ordering, page: PageRequest) -> AnySelect:
    """Whether `query` has rows at or after the page's `before` cursor (EXISTS)."""
    assert page.before is not None
    position = page.before
    condition = ordering.after(position.values, position.id, inclusive=True)
    return select(query.where(condition).exists())


def rows_before_statement(query: AnySelect, ordering: Ordering, page: PageRequest) -> AnySelect:
    """Whether `query` has rows at or before the page's `after` cursor (EXISTS)."""
    assert page.after is not None
    position = page.after
    condition = ordering.after(position.values, position.id, backwards=True, inclusive=True)
    return select(query.where(condition).exists())


def count_statement(query: AnySelect) -> AnySelect:
    """How many rows `query` has."""
    return select(func.count()).select_from(query.subquery())


# The statements of first pages (no cursor), built once per query, ordering and page size.
_page_statements: dict[tuple[Any, ...], tuple[AnySelect, Shaped]] = {}
MAX_PAGE_STATEMENTS = 1_000


def pages_statement(
    query: AnySelect,
    partition: KeyedColumnElement[Any],
    owners: Any,
    ordering: Ordering,
    page: PageRequest,
) -> AnySelect:
    """The SELECT of the same page of `query` for each of `owners` (a window function)."""
    number = (
        func.row_number()
        .over(partition_by=partition, order_by=ordering.order_by(backwards=page.backwards))
        .label("_row_number")
    )
    inner = bounded(query.where(partition.in_(owners)), ordering, page).add_columns(number)
    ranked = inner.subquery()
    return (
        select(ranked)
        .where(ranked.c._row_number <= page.size + 1)
        .order_by(ranked.c[partition.key], ranked.c._row_number)
    )


def first_pages_statement(
    query: AnySelect, partition: KeyedColumnElement[Any], ordering: Ordering, page: PageRequest
) -> Shaped:
    """`pages_statement` for pages without cursors, owners as the parameter `owners`, made
    once per query (by identity), partition, ordering and page size."""
    key = (id(query), partition, ordering, page.size, page.backwards)
    found = _page_statements.get(key)
    if found is not None and found[0] is query:
        return found[1]
    if len(_page_statements) >= MAX_PAGE_STATEMENTS:
        _page_statements.clear()
    owners: BindParameter[Any] = bindparam("owners", expanding=True)
    shaped = Shaped(pages_statement(query, partition, owners, ordering, page))
    _page_statements[key] = (query, shaped)
    return shaped


async def fetch_pages(
    db: SharedSession,
    query: AnySelect,
    partition: KeyedColumnElement[Any],
    owners: Sequence[Any],
    ordering: Ordering,
    page: PageRequest,
    *,
    kept: bool = True,
) -> dict[Any, tuple[list[AnyRow], bool]]:
    """The same page of a list for many owners at once (one statement, a window function):
    per owner, its rows and whether more follow. `kept`: `query` is built once and used
    again (a first page's statement is then kept for it); False for one made per request."""
    if ordering.time_dependent or not kept:  # made for this request: nothing to keep
        query = query.add_columns(*ordering.computed_columns)
        statement = pages_statement(query, partition, owners, ordering, page)
        found = await db.fetch_all(statement)
        columns = tuple(statement.selected_columns.keys())
    elif page.after is None and page.before is None:
        shaped = first_pages_statement(query, partition, ordering, page)
        found = await db.fetch_all(shaped, {"owners": list(owners)})
        columns = shaped.columns
    else:
        statement = pages_statement(query, partition, owners, ordering, page)
        found = await db.fetch_all(statement)
        columns = tuple(statement.selected_columns.keys())
    rows = light_rows(columns, found)
    pages: dict[Any, tuple[list[AnyRow], bool]] = {owner: ([], False) for owner in owners}
    owner_at = columns.index(partition.key)
    for row in rows:
        pages[row[owner_at]][0].append(row)
    for owner, (owned, _) in pages.items():
        pages[owner] = trim_page(owned, page)
    return pages
