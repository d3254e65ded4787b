"""Substring search over the clients' search text, by the index each database has.

PostgreSQL: `search_text LIKE lower(pattern)`, served by its trigram index (pg_trgm).
SQLite has no trigram index on a column; it has the FTS5 trigram tokenizer, which serves LIKE
on a full-text table (`client_search`, kept by triggers, migration 0008). There the condition
is "the id is among the FTS matches, and the search text is LIKE the pattern": the FTS look-up
knows no escape character, so it finds a superset, and the exact LIKE keeps the right rows.

That look-up suits a rare text; a common one matches thousands of rows that SQLite would all
read and sort for a page of 20 (8 ms at 100,000 clients). For a common text it is cheaper to
walk the list's order and stop at the page's last match, which the plain LIKE lets SQLite do
(over the index of created_at, id and the search text, migration 0012, without reading the
table). SQLite plans a statement once, not per text, so `sqlite_search_page` joins both plans
in one statement, each behind a condition on a sample that SQLite evaluates once: whether the
text is common among the newest clients.
"""

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    case,
    column,
    false,
    func,
    literal,
    select,
    table,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal, iterate, replacement_traverse

from db.models import SEARCH_SEPARATOR, Client

CLIENTS = Client.__table__
CLIENT_SEARCH = table("client_search", column("rowid"), column("text"))


def like_pattern(text: str) -> ColumnElement[str]:
    """`%text%` for LIKE with `\\` as escape character. It is written into the SQL (quoted by
    SQLAlchemy), not bound: PostgreSQL chooses between a trigram index (a rare text) and the
    list's ordered index (a common one) by looking at the pattern, which it cannot do with a
    prepared statement's `$1` (a generic plan scanned the list for a rare text: 200 ms)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return literal(f"%{escaped}%", literal_execute=True)


class SearchMatch(ColumnElement[bool]):
    """The clients whose login, name or e-mail contains `text` (in any case)."""

    __visit_name__ = "search_match"
    inherit_cache = True
    type = Boolean()
    # a condition, not a boolean value: on SQLite, no "= 1" after it (which hid the IN list
    # from the planner: it scanned the whole list)
    _is_implicitly_boolean = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's declaration of what to cache by)
        ("exact", InternalTraversal.dp_clauseelement),
        ("candidates", InternalTraversal.dp_clauseelement),
        ("walk", InternalTraversal.dp_boolean),
    ]

    exact: ColumnElement[bool]
    candidates: ColumnElement[bool]
    walk: bool  # on SQLite: the exact LIKE alone, checked row by row along the list's order

    def __init__(self, text: str) -> None:
        self.text, self.walk = text, False
        if SEARCH_SEPARATOR in text:  # no field holds it: a match would span two fields
            self.exact = self.candidates = false()
            return
        self.exact = CLIENTS.c.search_text.like(func.lower(like_pattern(text)), escape="\\")
        loose = literal(f"%{text}%", literal_execute=True)
        self.candidates = CLIENTS.c.id.in_(
            select(CLIENT_SEARCH.c.rowid).where(CLIENT_SEARCH.c.text.like(loose))
        )

    def walking(self) -> "SearchMatch":
        """The same match, found by checking the rows in the list's order (on SQLite)."""
        walking = SearchMatch.__new__(SearchMatch)
        walking.__dict__.update(self.__dict__)
        walking.walk = True
        return walking


@compiles(SearchMatch)
def _search_with_like(element: SearchMatch, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.exact, **kw))


@compiles(SearchMatch, "sqlite")
def _search_with_fts(element: SearchMatch, compiler: Any, **kw: Any) -> str:
    if element.walk:
        return str(compiler.process(element.exact, **kw))
    candidates = compiler.process(element.candidates, **kw)
    return f"({candidates} AND {compiler.process(element.exact, **kw)})"


# The walk is tried when at least COMMON_MATCHES of the SAMPLE newest clients match (1%): then
# it finds a page of 20 within about 2,000 rows (0.7 ms over the covering index), where the FTS
# look-up would read and sort 1,000 matches per 100,000 clients or more. A rare text costs the
# sample only (0.1 ms). The walk stops at the WALKED newest clients in any case: a text common
# among the newest only (a new company's accounts) cannot make it read the whole list; when it
# finds less than a page there, the FTS look-up answers.
SAMPLE = 200
COMMON_MATCHES = 2
WALKED = 5_000


def is_common(match: SearchMatch) -> ColumnElement[bool]:
    """Whether the text is common among the newest clients: one read of SAMPLE index rows."""
    sample = (
        select(CLIENTS.c.search_text)
        .order_by(CLIENTS.c.created_at.desc(), CLIENTS.c.id.desc())
        .limit(SAMPLE)
        .subquery()
    )
    pattern = func.lower(like_pattern(match.text))
    matching = (
        select(func.count())
        .select_from(sample)
        .where(sample.c.search_text.like(pattern, escape="\\"))
    )
    return matching.scalar_subquery() >= COMMON_MATCHES


def _walking(element: Any) -> SearchMatch | None:
    return element.walking() if isinstance(element, SearchMatch) else None


def sqlite_search_page(
    statement: Select[Any], order: Callable[[Any], list[ColumnElement[Any]]]
) -> Select[Any]:
    """On SQLite, a page `statement` of clients newest first, with one search: both plans
    (module docstring) in one statement. The walk runs if the sample says the text is common,
    over the WALKED newest clients at most; the FTS look-up runs if the walk did not find a
    page. A LIMIT of 0 makes SQLite skip a part without reading a row. `order(source)`: the
    page's ORDER BY over the rows of both."""
    where = statement.whereclause
    if where is None:
        return statement
    matches = list({id(e): e for e in iterate(where) if isinstance(e, SearchMatch)}.values())
    if len(matches) != 1 or matches[0].exact is matches[0].candidates:
        return statement
    limit = statement._limit_clause  # the page's size plus one, written into the SQL
    # (typed loosely: its overloads do not cover a Select)
    traverse: Callable[..., Any] = replacement_traverse
    walking = cast(Select[Any], traverse(statement, {}, _walking))
    # the rows from the newest down to the WALKED-th: a prefix of the list's order, which
    # SQLite reads as a range of the index (all of them if there are fewer clients)
    bound = func.coalesce(
        select(CLIENTS.c.created_at)
        .order_by(CLIENTS.c.created_at.desc(), CLIENTS.c.id.desc())
        .limit(1)
        .offset(WALKED - 1)
        .scalar_subquery(),
        select(func.min(CLIENTS.c.created_at)).scalar_subquery(),
    )
    walk = (
        walking.where(CLIENTS.c.created_at >= bound)
        .limit(case((is_common(matches[0]), limit), else_=0))
        .cte("search_walk")
    )
    found = select(func.count()).select_from(walk).scalar_subquery()
    walked = select(walk).limit(case((found >= limit, limit), else_=0))
    looked_up = statement.limit(case((found >= limit, 0), else_=limit))
    both = union_all(select(walked.subquery()), select(looked_up.subquery())).subquery()
    return select(both).order_by(*order(both)).limit(limit)
