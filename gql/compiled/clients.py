"""The `clients` list, compiled: one statement for the page with its to-one relations joined
(manager, parent, the block's author), plus the count and the page-boundary checks when they
are selected. Every value is computed by the same functions the resolvers use.

To-many fields (subAccounts, creditEntries, connections, custom fields, departments,
categories, packagePrices) are not compiled: an operation that selects one runs on
graphql-core's executor as before.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from types import SimpleNamespace
from typing import Any, cast

from graphql import (
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy import Select, Table, select
from strawberry import Schema
from strawberry.permission import PermissionExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from clientdesk.settings import Settings
from db.direct import Reused
from db.keyset import Ordering
from db.models import Client as ClientModel
from db.models import StaffUser as StaffModel
from gql.arguments import ArgumentProblems, argument_walkers, find_problems
from gql.clients.filters import FilterScope, client_conditions, count_clients, uses_scope
from gql.clients.sorters import client_ordering
from gql.clients.types import block_in_force, can_login
from gql.compiled.arguments import arguments_converter
from gql.compiled.selections import NotCompilable, Selected, collect, subselections
from gql.compiled.shapes import Code, Expr, Statement
from gql.context import Context
from gql.errors import ApiError
from gql.node import to_global_id
from gql.pagination import (
    PageRequest,
    dialect_page_query,
    encode_position,
    next_page_known,
    page_request,
    previous_page_known,
    rows_after_statement,
    rows_before_statement,
    trim_page,
)
from gql.scalars import money_amount
from services.languages import effective_language

# Where Strawberry keeps a GraphQL field's own definition.
DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
CLIENTS = cast(Table, ClientModel.__table__)
STAFF = cast(Table, StaffModel.__table__)

# Client fields that show a column as it is: GraphQL name -> column.
CLIENT_COLUMNS = {
    "login": "login",
    "name": "name",
    "email": "email",
    "phone": "phone",
    "country": "country",
    "currency": "currency",
    "language": "language",
    "status": "status",
    "validTill": "valid_till",
    "moderation": "moderation",
    "avatarUrl": "avatar_url",
    "priceAdjustmentPercent": "price_adjustment_percent",
    "lastActivityAt": "last_activity_at",
    "chatsCount": "chats_count",
    "supportRequestsCount": "support_requests_count",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
STAFF_COLUMNS = {"email": "email", "name": "name", "role": "role", "createdAt": "created_at"}
BLOCK_COLUMNS = {
    "reason": "block_reason",
    "blockedAt": "blocked_at",
    "blockedUntil": "blocked_until",
}


class Fallback(Exception):
    """This request is left to graphql-core's executor (it reports the error, if any)."""


@dataclass(slots=True)
class Compiler:
    """Compiles the selections below one root field into expressions over one statement."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    statement: Statement
    code: Code
    settings: Settings

    def fields(self, type_name: str, selected: Selected) -> list[Selected]:
        """The fields selected on `type_name`; NotCompilable for one that has arguments or
        field extensions (permission classes above all: they would be skipped here)."""
        object_type = self.schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        found = collect(object_type, subselections(selected), self.fragments)
        for entry in found:
            entry.no_arguments()
            field = object_type.fields.get(entry.name)
            definition = field.extensions.get(DEFINITION) if field is not None else None
            if definition is not None and definition.extensions:
                raise NotCompilable(f"{type_name}.{entry.name} has field extensions")
        return found

    def column(self, parent: str, name: str, table: Any, column: str) -> Expr:
        """A leaf field that shows a column as it is."""
        value = self.statement.column(table, column)
        nullable = self.statement.nullable(table, column)
        return self.code.leaf(self.schema, parent, name, value, nullable=nullable)

    def computed(self, parent: str, name: str, value: Expr) -> Expr:
        """A leaf field computed from columns (never None)."""
        return self.code.leaf(self.schema, parent, name, value, nullable=False)

    def client(self, selected: Selected, table: Any, *, joined: bool) -> Expr:
        """A Client object read from `table` (the clients table, or an alias joined to it)."""
        code, column = self.code, self.statement.column
        entries: list[tuple[str, Expr]] = []
        for field in self.fields("Client", selected):
            name = field.name
            if name == "__typename":
                value = code.bind("Client")
            elif name == "id":
                value = self.computed(
                    "Client", name, code.call(partial(to_global_id, "Client"), column(table, "id"))
                )
            elif name in CLIENT_COLUMNS:
                value = self.column("Client", name, table, CLIENT_COLUMNS[name])
            elif name == "effectiveLanguage":
                shown = partial(
                    effective_language,
                    translations=self.settings.translations,
                    default=self.settings.default_language,
                )
                value = self.computed("Client", name, code.call(shown, column(table, "language")))
            elif name == "blocked":
                value = self.computed("Client", name, self.blocked(table))
            elif name == "canLogin":
                can = code.call(
                    can_login,
                    column(table, "status"),
                    self.blocked(table),
                    column(table, "valid_till"),
                    "now",
                )
                value = self.computed("Client", name, can)
            elif name == "block":
                value = self.block(field, table)
            elif name in ("balance", "creditLimit"):
                amount = column(table, "balance" if name == "balance" else "credit_limit")
                value = self.money(field, amount, column(table, "currency"))
            elif name == "manager":
                manager = self.statement.join(STAFF, joined_on(table.c.manager_id))
                value = self.staff(field, manager)
            elif name == "parent":
                parent = self.statement.join(CLIENTS, joined_on(table.c.parent_id))
                value = self.client(field, parent, joined=True)
            else:
                raise NotCompilable(f"Client.{name}")
            entries.append((field.key, value))
        return code.object(entries, column(table, "id") if joined else None)

    def blocked(self, table: Any) -> Expr:
        column = self.statement.column
        return self.code.call(
            block_in_force, column(table, "blocked_at"), column(table, "blocked_until"), "now"
        )

    def block(self, selected: Selected, table: Any) -> Expr:
        """The ClientBlock in force, or None."""
        entries: list[tuple[str, Expr]] = []
        for field in self.fields("ClientBlock", selected):
            name = field.name
            if name == "__typename":
                value = self.code.bind("ClientBlock")
            elif name in BLOCK_COLUMNS:
                value = self.column("ClientBlock", name, table, BLOCK_COLUMNS[name])
            elif name == "blockedBy":
                author = self.statement.join(STAFF, joined_on(table.c.blocked_by_id))
                value = self.staff(field, author)
            else:
                raise NotCompilable(f"ClientBlock.{name}")
            entries.append((field.key, value))
        return f"({self.code.object(entries)} if {self.blocked(table)} else None)"

    def staff(self, selected: Selected, table: Any) -> Expr:
        """A StaffUser joined as `table`, or None."""
        entries: list[tuple[str, Expr]] = []
        for field in self.fields("StaffUser", selected):
            name = field.name
            if name == "__typename":
                value = self.code.bind("StaffUser")
            elif name == "id":
                global_id = partial(to_global_id, "StaffUser")
                value = self.computed(
                    "StaffUser", name, self.code.call(global_id, self.statement.column(table, "id"))
                )
            elif name in STAFF_COLUMNS:
                value = self.column("StaffUser", name, table, STAFF_COLUMNS[name])
            else:
                raise NotCompilable(f"StaffUser.{name}")
            entries.append((field.key, value))
        return self.code.object(entries, self.statement.column(table, "id"))

    def money(self, selected: Selected, amount: Expr, currency: Expr) -> Expr:
        entries: list[tuple[str, Expr]] = []
        for field in self.fields("Money", selected):
            if field.name == "__typename":
                value = self.code.bind("Money")
            elif field.name == "amount":
                value = self.computed(
                    "Money", "amount", self.code.call(money_amount, amount, currency)
                )
            elif field.name == "currency":
                value = self.computed("Money", "currency", currency)
            else:
                raise NotCompilable(f"Money.{field.name}")
            entries.append((field.key, value))
        return self.code.object(entries)


def joined_on(foreign_key: Any) -> Callable[[Any], Any]:
    """The join condition of a to-one relation: the alias's id is the foreign key."""
    return lambda alias: alias.c.id == foreign_key


PAGE_INFO = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"}


@dataclass(frozen=True, slots=True)
class PageParts:
    """What the connection's selection asks of a page, in response order."""

    entries: list[tuple[str, str, Any]]  # (response key, what, how): see ClientsField.shape
    count: bool  # totalCount selected
    cursors: bool  # every row's cursor is selected (edges.cursor)


@dataclass(frozen=True, slots=True)
class PageStatements:
    """The statements of one page: its rows, and its count when selected."""

    ordering: Ordering
    page: PageRequest
    query: Select[Any]  # the filtered rows, for pageInfo's checks in the other direction
    rows: Reused
    count: Reused | None
    sort_indexes: list[int]  # where the cursor's values are in a row


@dataclass(slots=True)
class ClientsCall:
    """One set of arguments of the field, shared by the requests that send the same variables:
    their statements are kept when they do not depend on the viewer or the instant."""

    kwargs: dict[str, Any]
    statements: PageStatements | None = None


class ClientsField:
    """`clients(filter, search, orderBy, first, after, last, before)`, compiled."""

    def __init__(
        self,
        selected: Selected,
        graphql_field: GraphQLField,
        strawberry_field: StrawberryField,
        schema: Schema,
        fragments: dict[str, FragmentDefinitionNode],
        settings: Settings,
    ) -> None:
        if any(
            not isinstance(extension, PermissionExtension | ArgumentProblems)
            for extension in strawberry_field.extensions
        ):
            raise NotCompilable("field extensions")
        self.walkers = argument_walkers(strawberry_field)
        self.key = selected.key
        self.node = selected.node
        self.graphql_field = graphql_field
        self.strawberry_field = strawberry_field
        self.convert = arguments_converter(strawberry_field, schema)
        self.permissions = [
            permission
            for extension in strawberry_field.extensions
            if isinstance(extension, PermissionExtension)
            for permission in extension.permissions
        ]
        self.statement = Statement(CLIENTS)
        code = Code()
        compiler = Compiler(schema._schema, fragments, self.statement, code, settings)
        connection = get_named_type(graphql_field.type)
        assert isinstance(connection, GraphQLObjectType)
        connection_type = connection.name
        entries: list[tuple[str, str, Any]] = []
        count = cursors = False
        for field in compiler.fields(connection_type, selected):
            name = field.name
            if name == "__typename":
                entries.append((field.key, "constant", connection_type))
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
                        edge.append((f.key, compiler.client(f, CLIENTS, joined=False)))
                    else:
                        raise NotCompilable(f"{edge_type}.{f.name}")
                each = code.object(edge)
                read = code.function(
                    "rows, cursors, now", f"[{each} for row, cursor in zip(rows, cursors)]"
                )
                entries.append((field.key, "edges", read))
            elif name == "nodes":
                each = compiler.client(field, CLIENTS, joined=False)
                entries.append(
                    (field.key, "nodes", code.function("rows, now", f"[{each} for row in rows]"))
                )
            else:
                raise NotCompilable(f"{connection_type}.{name}")
        self.parts = PageParts(entries, count, cursors)
        self.id_index = self.statement.index(CLIENTS, "id")
        self.base: Select[Any] = select(*self.statement.columns).select_from(
            self.statement.from_clause()
        )

    def arguments(self, variables: VariableValues) -> "ClientsCall":
        """The resolver's keyword arguments (a pure function of the variables)."""
        return ClientsCall(
            self.convert(get_argument_values(self.graphql_field, self.node, variables))
        )

    def permit(self, context: Context, call: "ClientsCall") -> None:
        """Check the field's own permissions; Fallback when they refuse (the executor then
        reports it)."""
        info = SimpleNamespace(context=context)
        for permission in self.permissions:
            try:
                allowed = permission.has_permission(None, info, **call.kwargs)  # type: ignore[arg-type]
            except ApiError:
                raise Fallback from None
            if not allowed:
                raise Fallback

    def statements(
        self, kwargs: dict[str, Any], scope: FilterScope, dialect: str
    ) -> "PageStatements":
        """The SQL of a page for these arguments; Fallback for arguments the resolver refuses."""
        if find_problems(self.walkers, kwargs):
            raise Fallback  # the executor reports them
        filter, search = kwargs.get("filter"), kwargs.get("search")
        try:
            ordering = client_ordering(kwargs.get("order_by"))
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
            index = self.statement.find(CLIENTS, name)
            if index is None:
                base = base.add_columns(CLIENTS.c[name])
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

    async def run(self, context: Context, call: "ClientsCall") -> Any:
        """The field's value in the response."""
        viewer = context.viewer
        assert viewer is not None  # the permissions let only authenticated viewers through
        scope = FilterScope(viewer_id=viewer.staff_id, now=context.now)
        statements = call.statements
        if statements is None:
            statements = self.statements(call.kwargs, scope, context.db.dialect_name)
            if not uses_scope(call.kwargs.get("filter")):
                call.statements = statements  # the same for every request with these variables
        ordering, page, query = statements.ordering, statements.page, statements.query
        sort_indexes = statements.sort_indexes
        db = context.db
        rows, more = trim_page(list(await db.fetch_all(statements.rows)), page)
        id_index, signature = self.id_index, ordering.signature

        def cursor(row: Sequence[Any]) -> str:
            return encode_position(signature, [row[i] for i in sort_indexes], row[id_index])

        cursors = [cursor(row) for row in rows] if self.parts.cursors else None
        now = context.now
        value: dict[str, Any] = {}
        for key, what, how in self.parts.entries:
            if what == "constant":
                value[key] = how
            elif what == "count":
                assert statements.count is not None
                value[key] = int((await db.fetch_all(statements.count))[0][0])
            elif what == "nodes":
                value[key] = how(rows, now)
            elif what == "edges":
                value[key] = how(rows, repeat(None) if cursors is None else cursors, now)
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
                        if known is None:
                            exists = rows_after_statement(query, ordering, page)
                            known = bool((await db.fetch_all(exists))[0][0])
                        info[info_key] = known
                    else:  # hasPreviousPage
                        known = previous_page_known(page, more)
                        if known is None:
                            exists = rows_before_statement(query, ordering, page)
                            known = bool((await db.fetch_all(exists))[0][0])
                        info[info_key] = known
                value[key] = info
        return value
