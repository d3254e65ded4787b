"""The root fields the compiler knows: the `clients` list and one `client` by ID or login.

Each is one statement with the client's to-one relations joined (manager, parent, the block's
author), plus one statement per nested connection and level (creditEntries, subAccounts: see
gql/compiled/objects.py), plus the count and the page-boundary checks when they are selected.
Every value is computed by the same functions the resolvers use.

A client's other lists (connections, departments, categories, custom fields, package prices)
are one statement each per level too, by the loaders' own statements (gql/compiled/objects.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    get_named_type,
)
from graphql.execution.values import VariableValues
from sqlalchemy import Select, bindparam, select
from strawberry import Schema
from strawberry.types.field import StrawberryField

from clientdesk.settings import Settings
from db.direct import Reused, Shaped
from db.keyset import Ordering
from gql.clients.filters import FilterScope, client_conditions, count_clients, uses_scope
from gql.clients.queries import client_key
from gql.clients.sorters import client_ordering
from gql.compiled.fields import FieldPlan
from gql.compiled.objects import CLIENTS, Compiler, fill_nested
from gql.compiled.pages import NODES, PageParts, connection_parts, page_value
from gql.compiled.selections import Fallback, Selected
from gql.compiled.shapes import Code, Statement
from gql.context import Context
from gql.enums import Scope
from gql.errors import ApiError
from gql.node import MAX_NODES, parse_global_id
from gql.pagination import (
    PageRequest,
    dialect_page_query,
    encode_position,
    page_request,
    rows_after_statement,
    rows_before_statement,
    trim_page,
)


@dataclass(slots=True)
class Call:
    """One set of arguments of a root field, shared by the requests that send the same
    variables: the resolver's keyword arguments, each nested connection's page, and the
    statements worked out for them when they depend on neither the viewer nor the instant."""

    kwargs: dict[str, Any]
    nested: list[Any]
    statements: Any = None
    key: Any = field(default=None)


class RootField(FieldPlan):
    """What the client root fields share: their arguments, permissions and one compiled
    statement."""

    def __init__(
        self,
        selected: Selected,
        graphql_field: GraphQLField,
        strawberry_field: StrawberryField,
        schema: Schema,
        fragments: dict[str, FragmentDefinitionNode],
        settings: Settings,
    ) -> None:
        super().__init__(selected, graphql_field, strawberry_field, schema)
        self.statement = Statement(CLIENTS)
        self.code = Code()
        self.compiler = Compiler(schema, fragments, self.statement, self.code, settings)

    def arguments(self, variables: VariableValues) -> Call:
        """The arguments of the field and of its nested connections (a pure function of the
        variables); Fallback for those the resolvers refuse."""
        return Call(self.kwargs(variables), self.nested_arguments(variables))

    def nested_arguments(self, variables: VariableValues) -> list[Any]:
        """The arguments of each nested connection below the field."""
        return [plan.arguments(variables) for plan in self.compiler.registry]

    async def run(self, context: Context, call: Call) -> Any:
        raise NotImplementedError


class ClientField(RootField):
    """`client(id, login)`, compiled: the client's row with its to-one relations joined."""

    def __init__(self, selected: Selected, *args: Any) -> None:
        super().__init__(selected, *args)
        client = self.compiler.client(selected, CLIENTS, joined=False)
        self.read = self.code.function(NODES, f"[{client} for row in rows]")
        self.statement.index(CLIENTS, "id")  # a column at least (`{ __typename }` reads none)
        base = select(*self.statement.columns).select_from(self.statement.from_clause())
        self.by_id = Shaped(base.where(CLIENTS.c.id == bindparam("key")))
        self.by_login = Shaped(base.where(CLIENTS.c.login == bindparam("key")))

    def arguments(self, variables: VariableValues) -> Call:
        call = super().arguments(variables)
        try:
            call.key = client_key(call.kwargs.get("id"), call.kwargs.get("login"))
        except ApiError:
            raise Fallback from None
        return call

    async def run(self, context: Context, call: Call) -> Any:
        return await self.client(context, call.key, call.nested)

    async def client(self, context: Context, key: int | str | None, nested: list[Any]) -> Any:
        """The client with primary key or login `key`, or None."""
        if key is None:
            return None
        statement = self.by_login if isinstance(key, str) else self.by_id
        rows = await context.db.fetch_all(statement, {"key": key})
        if not rows:
            return None
        values = await fill_nested(self.compiler.nested, rows, context, nested)
        return self.read(rows, context.now, values)[0]


def clients_readable(context: Context) -> None:
    """Fallback without clients:read: a client is then null, which fetch_clients
    (gql/clients/types.py) answers on the executor."""
    viewer = context.viewer
    if viewer is None or not viewer.has_scope(Scope.CLIENTS_READ):
        raise Fallback


class NodeField(ClientField):
    """`node(id)` for a client's ID, compiled as `client(id)` (its `... on Client` and
    `... on Node` selections); any other type's ID is left to the executor."""

    def arguments(self, variables: VariableValues) -> Call:
        call = RootField.arguments(self, variables)
        try:
            type_name, pk = parse_global_id(call.kwargs["id"])
        except ApiError:
            raise Fallback from None
        if type_name != "Client":
            raise Fallback
        call.key = pk
        return call

    def permit(self, context: Context, call: Call) -> None:
        super().permit(context, call)
        clients_readable(context)


class NodesField(ClientField):
    """`nodes(ids)` when every ID is a client's: one statement for all of them, answered in
    the IDs' order (null where none); any other type's ID leaves it to the executor."""

    def __init__(self, selected: Selected, *args: Any) -> None:
        super().__init__(selected, *args)
        base = select(*self.statement.columns).select_from(self.statement.from_clause())
        self.by_ids = Shaped(base.where(CLIENTS.c.id.in_(bindparam("keys", expanding=True))))
        self.id_index = self.statement.index(CLIENTS, "id")

    def arguments(self, variables: VariableValues) -> Call:
        call = RootField.arguments(self, variables)
        ids = call.kwargs["ids"]
        if len(ids) > MAX_NODES:
            raise Fallback  # the resolver refuses it
        keys = []
        for value in ids:
            try:
                type_name, pk = parse_global_id(value)
            except ApiError:
                raise Fallback from None
            if type_name != "Client":
                raise Fallback
            keys.append(pk)
        call.key = keys
        return call

    def permit(self, context: Context, call: Call) -> None:
        super().permit(context, call)
        clients_readable(context)

    async def run(self, context: Context, call: Call) -> Any:
        keys: list[int] = call.key
        rows = await context.db.fetch_all(self.by_ids, {"keys": list(dict.fromkeys(keys))})
        values = await fill_nested(self.compiler.nested, rows, context, call.nested)
        written = self.read(rows, context.now, values)
        by_id = {row[self.id_index]: value for row, value in zip(rows, written, strict=True)}
        return [by_id.get(key) for key in keys]


@dataclass(frozen=True, slots=True)
class PageStatements:
    """The statements of one page: its rows, and its count when selected."""

    ordering: Ordering
    page: PageRequest
    query: Select[Any]  # the filtered rows, for pageInfo's checks in the other direction
    rows: Reused
    count: Reused | None
    sort_indexes: list[int]  # where the cursor's values are in a row


class ClientsField(RootField):
    """`clients(filter, search, orderBy, first, after, last, before)`, compiled."""

    def __init__(self, selected: Selected, *args: Any) -> None:
        super().__init__(selected, *args)
        connection = get_named_type(self.graphql_field.type)
        assert isinstance(connection, GraphQLObjectType)
        compiler = self.compiler
        self.parts: PageParts = connection_parts(
            compiler,
            connection,
            selected,
            lambda node: compiler.client(node, CLIENTS, joined=False),
        )
        self.id_index = self.statement.index(CLIENTS, "id")
        self.base: Select[Any] = select(*self.statement.columns).select_from(
            self.statement.from_clause()
        )

    def statements(
        self, kwargs: dict[str, Any], scope: FilterScope, dialect: str
    ) -> PageStatements:
        """The SQL of a page for these arguments; Fallback for arguments the resolver refuses."""
        filter, search = kwargs.get("filter"), kwargs.get("search")
        try:
            ordering = client_ordering(kwargs.get("order_by"), now=scope.now)
            page = page_request(
                ordering,
                first=kwargs.get("first"),
                after=kwargs.get("after"),
                last=kwargs.get("last"),
                before=kwargs.get("before"),
            )
            conditions = client_conditions(filter, search, scope)
        except ApiError:
            raise Fallback from None
        # the sort columns, for cursors, where the selection did not ask for them already
        base, sort_indexes = self.base, []
        width = len(self.statement.columns)
        for sort_key in ordering.keys:
            name = str(sort_key.column.key)
            index = None if sort_key.computed else self.statement.find(CLIENTS, name)
            if index is None:
                base = base.add_columns(sort_key.column if sort_key.computed else CLIENTS.c[name])
                index = width
                width += 1
            sort_indexes.append(index)
        query = base.where(*conditions)
        return PageStatements(
            ordering=ordering,
            page=page,
            query=query,
            rows=Reused(dialect_page_query(query, ordering, page, dialect)),
            count=Reused(count_clients(filter, search, scope)) if self.parts.count else None,
            sort_indexes=sort_indexes,
        )

    async def run(self, context: Context, call: Call) -> Any:
        """The field's value in the response."""
        viewer = context.viewer
        assert viewer is not None  # the permissions let only authenticated viewers through
        scope = FilterScope(viewer_id=viewer.staff_id, now=context.now)
        statements: PageStatements | None = call.statements
        if statements is None:
            statements = self.statements(call.kwargs, scope, context.db.dialect_name)
            if not uses_scope(call.kwargs.get("filter")) and not statements.ordering.time_dependent:
                call.statements = statements  # the same for every request with these variables
        ordering, page, query = statements.ordering, statements.page, statements.query
        sort_indexes = statements.sort_indexes
        db = context.db
        rows, more = trim_page(list(await db.fetch_all(statements.rows)), page)
        nested = await fill_nested(self.compiler.nested, rows, context, call.nested)
        id_index, signature = self.id_index, ordering.signature

        def cursor(row: Sequence[Any]) -> str:
            return encode_position(signature, [row[i] for i in sort_indexes], row[id_index])

        async def count() -> int:
            assert statements.count is not None
            return int((await db.fetch_all(statements.count))[0][0])

        async def rows_after() -> bool:
            exists = rows_after_statement(query, ordering, page)
            return bool((await db.fetch_all(exists))[0][0])

        async def rows_before() -> bool:
            exists = rows_before_statement(query, ordering, page)
            return bool((await db.fetch_all(exists))[0][0])

        return await page_value(
            self.parts,
            rows,
            more,
            page,
            cursor,
            context.now,
            nested,
            count,
            rows_after,
            rows_before,
        )
