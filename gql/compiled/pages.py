"""A connection's selection (totalCount, pageInfo, edges, nodes), compiled, and its value for
one page of rows: the same for the root `clients` list and for every nested connection."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

from graphql import GraphQLObjectType, get_named_type

from gql.compiled.selections import NotCompilable, Selected
from gql.compiled.shapes import Expr
from gql.pagination import PageRequest, next_page_known, previous_page_known

if TYPE_CHECKING:
    from gql.compiled.objects import Compiler

PAGE_INFO = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"}
# The parameters of the generated readers of a page's rows (see Compiler.nested for `nested`).
NODES = "rows, now, nested"
EDGES = "rows, cursors, now, nested"


@dataclass(frozen=True, slots=True)
class PageParts:
    """What a connection's selection asks of a page, in response order: entries are
    (response key, what, how) with `what` one of constant, count, pageInfo, edges, nodes."""

    entries: list[tuple[str, str, Any]]
    count: bool  # totalCount selected
    cursors: bool  # every row's cursor is selected (edges.cursor)


def connection_parts(
    compiler: "Compiler",
    connection: GraphQLObjectType,
    selected: Selected,
    node: Callable[[Selected], Expr],
) -> PageParts:
    """The parts of a connection's selection; `node` compiles the selection of one node (an
    expression over `row`) in the compiler's statement."""
    code = compiler.code
    entries: list[tuple[str, str, Any]] = []
    count = cursors = False
    for field in compiler.fields(connection.name, selected):
        name = field.name
        if name == "__typename":
            entries.append((field.key, "constant", connection.name))
        elif name == "totalCount":
            entries.append((field.key, "count", None))
            count = True
        elif name == "pageInfo":
            info = [(f.key, f.name) for f in compiler.fields("PageInfo", field)]
            if {n for _, n in info} - PAGE_INFO:
                raise NotCompilable("PageInfo")
            entries.append((field.key, "pageInfo", info))
        elif name == "edges":
            edge_type = get_named_type(connection.fields["edges"].type).name
            edge: list[tuple[str, Expr]] = []
            for f in compiler.fields(edge_type, field):
                if f.name == "__typename":
                    edge.append((f.key, code.bind(edge_type)))
                elif f.name == "cursor":
                    edge.append((f.key, "cursor"))
                    cursors = True
                elif f.name == "node":
                    edge.append((f.key, node(f)))
                else:
                    raise NotCompilable(f"{edge_type}.{f.name}")
            each = code.object(edge)
            read = code.function(EDGES, f"[{each} for row, cursor in zip(rows, cursors)]")
            entries.append((field.key, "edges", read))
        elif name == "nodes":
            read = code.function(NODES, f"[{node(field)} for row in rows]")
            entries.append((field.key, "nodes", read))
        else:
            raise NotCompilable(f"{connection.name}.{name}")
    return PageParts(entries, count, cursors)


Check = Callable[[], Awaitable[bool]]


async def page_value(
    parts: PageParts,
    rows: Sequence[Sequence[Any]],
    more: bool,
    page: PageRequest,
    cursor: Callable[[Sequence[Any]], str],
    now: Any,
    nested: Any,
    count: Callable[[], Awaitable[int]],
    rows_after: Check,
    rows_before: Check,
) -> dict[str, Any]:
    """The connection's value for one page of `rows` (in display order, `more` rows in the
    walking direction); the count and the checks are awaited only if selected and needed."""
    cursors = [cursor(row) for row in rows] if parts.cursors else None
    value: dict[str, Any] = {}
    for key, what, how in parts.entries:
        if what == "constant":
            value[key] = how
        elif what == "count":
            value[key] = await count()
        elif what == "nodes":
            value[key] = how(rows, now, nested)
        elif what == "edges":
            value[key] = how(rows, repeat(None) if cursors is None else cursors, now, nested)
        else:  # pageInfo
            info: dict[str, Any] = {}
            for info_key, name in how:
                if name == "__typename":
                    info[info_key] = "PageInfo"
                elif name == "startCursor":
                    info[info_key] = cursor(rows[0]) if rows else None
                elif name == "endCursor":
                    info[info_key] = cursor(rows[-1]) if rows else None
                elif name == "hasNextPage":
                    known = next_page_known(page, more)
                    info[info_key] = await rows_after() if known is None else known
                else:  # hasPreviousPage
                    known = previous_page_known(page, more)
                    info[info_key] = await rows_before() if known is None else known
            value[key] = info
    return value
