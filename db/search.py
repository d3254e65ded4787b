"""Substring search over the clients' search text, by the index each database has.

PostgreSQL: `search_text LIKE lower(pattern)`, served by its trigram index (pg_trgm).
SQLite has no trigram index on a column; it has the FTS5 trigram tokenizer, which serves LIKE
on a full-text table (`client_search`, kept by triggers, migration 0008). There the condition
is "the id is among the FTS matches, and the search text is LIKE the pattern": the FTS look-up
knows no escape character, so it finds a superset, and the exact LIKE keeps the right rows.
"""

from typing import Any

from sqlalchemy import Boolean, ColumnElement, column, false, func, literal, select, table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

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
    ]

    exact: ColumnElement[bool]
    candidates: ColumnElement[bool]

    def __init__(self, text: str) -> None:
        if SEARCH_SEPARATOR in text:  # no field holds it: a match would span two fields
            self.exact = self.candidates = false()
            return
        self.exact = CLIENTS.c.search_text.like(func.lower(like_pattern(text)), escape="\\")
        loose = literal(f"%{text}%", literal_execute=True)
        self.candidates = CLIENTS.c.id.in_(
            select(CLIENT_SEARCH.c.rowid).where(CLIENT_SEARCH.c.text.like(loose))
        )


@compiles(SearchMatch)
def _search_with_like(element: SearchMatch, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.exact, **kw))


@compiles(SearchMatch, "sqlite")
def _search_with_fts(element: SearchMatch, compiler: Any, **kw: Any) -> str:
    candidates = compiler.process(element.candidates, **kw)
    return f"({candidates} AND {compiler.process(element.exact, **kw)})"
