"""Objects compiled into expressions over one statement's rows (Client, StaffUser, ClientBlock,
Money, CreditEntry), and the nested connections below them (`Client.creditEntries`,
`Client.subAccounts`): one more statement per connection and level, for every owner on the
level above at once — the loaders' plan (gql/loaders.py), with the same statements for counts
and the same page, ordering and cursor functions.

Every value is computed by the same functions the resolvers use.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from graphql import (
    FragmentDefinitionNode,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy import ColumnElement, Select, Table, bindparam, func, select
from sqlalchemy.sql.elements import BindParameter
from strawberry import Schema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from clientdesk.settings import Settings
from db.direct import Shaped, light_rows
from db.keyset import Ordering
from db.models import Client as ClientModel
from db.models import CreditEntry as EntryModel
from db.models import StaffUser as StaffModel
from db.queries import billing_mode_column
from gql.arguments import ArgumentProblems
from gql.clients.sorters import TIME_DEPENDENT, ClientOrder, client_ordering
from gql.clients.types import NEWEST_ENTRY_FIRST, block_in_force, can_login, package_prices
from gql.compiled.arguments import arguments_converter
from gql.compiled.outputs import Outputs
from gql.compiled.pages import PageParts, connection_parts, page_value
from gql.compiled.selections import Fallback, NotCompilable, Selected, collect, subselections
from gql.compiled.shapes import Code, Expr, Statement
from gql.context import Context
from gql.errors import ApiError
from gql.loaders import (
    CATEGORIES_BY_CLIENT,
    CONNECTIONS_BY_CLIENT,
    CUSTOM_FIELD_DEFINITIONS,
    CUSTOM_FIELD_VALUES_BY_CLIENT,
    DEPARTMENTS_BY_CLIENT,
    PACKAGE_PRICES_BY_CURRENCY,
)
from gql.node import to_global_id
from gql.pagination import (
    PageRequest,
    encode_position,
    page_query,
    page_request,
    pages_statement,
    rows_after_statement,
    rows_before_statement,
    trim_page,
)
from gql.scalars import money_amount
from services.custom_fields import readable_value
from services.languages import effective_language

# Where Strawberry keeps a GraphQL field's own definition.
DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
CLIENTS = cast(Table, ClientModel.__table__)
STAFF = cast(Table, StaffModel.__table__)
ENTRIES = cast(Table, EntryModel.__table__)
SUB_ACCOUNTS = CLIENTS.alias("sub_accounts")  # counted below a client row (not correlated)

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
    "version": "version",
}
STAFF_COLUMNS = {"email": "email", "name": "name", "role": "role", "createdAt": "created_at"}
BLOCK_COLUMNS = {
    "reason": "block_reason",
    "blockedAt": "blocked_at",
    "blockedUntil": "blocked_until",
}
ENTRY_COLUMNS = {
    "kind": "kind",
    "paymentMethod": "payment_method",
    "paymentReference": "payment_reference",
    "comment": "comment",
    "validTillSet": "valid_till_set",
    "createdAt": "created_at",
}
ENTRY_AMOUNTS = {"amount": "amount", "balanceAfter": "balance_after"}


@dataclass(slots=True)
class Compiler:
    """Compiles the selections below one field into expressions over one statement, and the
    nested connections below them into plans of their own."""

    schema: Schema
    fragments: dict[str, FragmentDefinitionNode]
    statement: Statement
    code: Code
    settings: Settings
    # this statement's nested connections: (plan, where the owner's id is in a row, where its
    # count is, if selected); the generated code reads connection k of the owner in `row` as
    # nested[k][owner id]
    nested: list[tuple["Nested", int, int | None]] = field(default_factory=list)
    # every nested connection below the root field, at any depth (for their arguments)
    registry: list["NestedConnection"] = field(default_factory=list)

    @property
    def graphql_schema(self) -> GraphQLSchema:
        return self.schema._schema

    def below(self, root: Table) -> "Compiler":
        """A compiler for a statement of its own (a nested connection's rows)."""
        return Compiler(
            self.schema,
            self.fragments,
            Statement(root),
            Code(),
            self.settings,
            registry=self.registry,
        )

    def fields(
        self, type_name: str, selected: Selected, with_arguments: frozenset[str] = frozenset()
    ) -> list[Selected]:
        """The fields selected on `type_name`; NotCompilable for one that has arguments (but
        those named in `with_arguments`) or field extensions (permission classes above all:
        they would be skipped here)."""
        object_type = self.graphql_schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        found = collect(object_type, subselections(selected), self.fragments)
        for entry in found:
            if entry.name in with_arguments:
                continue
            entry.no_arguments()
            graphql_field = object_type.fields.get(entry.name)
            definition = (
                graphql_field.extensions.get(DEFINITION) if graphql_field is not None else None
            )
            if definition is not None and definition.extensions:
                raise NotCompilable(f"{type_name}.{entry.name} has field extensions")
        return found

    def column(self, parent: str, name: str, table: Any, column: str) -> Expr:
        """A leaf field that shows a column as it is."""
        value = self.statement.column(table, column)
        nullable = self.statement.nullable(table, column)
        return self.code.leaf(self.graphql_schema, parent, name, value, nullable=nullable)

    def computed(self, parent: str, name: str, value: Expr) -> Expr:
        """A leaf field computed from columns (never None)."""
        return self.code.leaf(self.graphql_schema, parent, name, value, nullable=False)

    def global_id(self, type_name: str, table: Any) -> Expr:
        value = self.code.call(partial(to_global_id, type_name), self.statement.column(table, "id"))
        return self.computed(type_name, "id", value)

    def client(self, selected: Selected, table: Any, *, joined: bool) -> Expr:
        """A Client object read from `table` (the clients table, or an alias joined to it)."""
        code, column = self.code, self.statement.column
        entries: list[tuple[str, Expr]] = []
        for field_ in self.fields("Client", selected, NESTED_NAMES):
            name = field_.name
            if name == "__typename":
                value = code.bind("Client")
            elif name == "id":
                value = self.global_id("Client", table)
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
                billing = self.statement.expression("billing_mode", billing_mode_column())
                can = code.call(
                    can_login,
                    column(table, "status"),
                    self.blocked(table),
                    column(table, "valid_till"),
                    "now",
                    f"row[{billing}]",
                )
                value = self.computed("Client", name, can)
            elif name == "block":
                value = self.block(field_, table)
            elif name in ("balance", "creditLimit"):
                amount = column(table, "balance" if name == "balance" else "credit_limit")
                value = self.money(field_, amount, column(table, "currency"))
            elif name == "manager":
                manager = self.statement.join(STAFF, joined_on(table.c.manager_id))
                value = self.staff(field_, manager)
            elif name == "parent":
                parent = self.statement.join(CLIENTS, joined_on(table.c.parent_id))
                value = self.client(field_, parent, joined=True)
            elif name in NESTED_NAMES:
                value = self.connection("Client", field_, table)
            elif name in LISTS:
                value = self.owned_list(field_, table)
            elif name == "packagePrices":
                value = self.package_prices(field_, table)
            elif name == "customFields":
                plan = CustomFields(self, field_)
                owner = self.statement.index(table, "id")
                self.nested.append((plan, owner, None))
                value = f"nested[{len(self.nested) - 1}][row[{owner}]]"
            else:
                raise NotCompilable(f"Client.{name}")
            entries.append((field_.key, value))
        return code.object(entries, column(table, "id") if joined else None)

    def connection(self, parent: str, selected: Selected, table: Any) -> Expr:
        """A nested connection of the object read from `table`: its value, fetched for every
        owner on this level at once, is looked up by the owner's id."""
        plan = NestedConnection(self, parent, selected)
        owner = self.statement.index(table, "id")
        counted = None
        if plan.parts.count:  # a column of the owner's row: no statement of its own
            count = plan.kind.count(table.c.id)
            counted = self.statement.expression(f"count_{len(self.nested)}", count)
        self.nested.append((plan, owner, counted))
        return f"nested[{len(self.nested) - 1}][row[{owner}]]"

    def owned_list(self, selected: Selected, table: Any) -> Expr:
        """A list of rows owned by the object read from `table` (its connections, departments,
        categories), or whether it is empty: read by the loaders' statement for every owner
        on this level at once, looked up by the owner's id."""
        kind = LISTS[selected.name]
        plan = OwnedList(self, kind, selected)
        owner = self.statement.index(table, "id")
        self.nested.append((plan, owner, None))
        found = f"nested[{len(self.nested) - 1}][row[{owner}]]"
        return f"(not {found})" if kind.empty else found

    def package_prices(self, selected: Selected, table: Any) -> Expr:
        """The client's prices: the active packages' prices in its currency (read for every
        currency on this level at once), made into the resolver's own objects by the same
        function, and written by generated code."""
        outputs = Outputs(self.schema, self.fragments)
        field_type = self.graphql_schema.get_type("Client").fields["packagePrices"].type  # type: ignore[union-attr]
        write = outputs.code.function("prices", outputs.value(field_type, selected, "prices", 0))

        def prices(rows: Sequence[Any], currency: str, percent: Any) -> Any:
            return write(package_prices(rows, currency, percent))

        currency = self.statement.index(table, "currency")
        self.nested.append((PricesByCurrency(), currency, None))
        found = f"nested[{len(self.nested) - 1}][row[{currency}]]"
        percent = self.statement.column(table, "price_adjustment_percent")
        return self.code.call(prices, found, f"row[{currency}]", percent)

    def blocked(self, table: Any) -> Expr:
        column = self.statement.column
        return self.code.call(
            block_in_force, column(table, "blocked_at"), column(table, "blocked_until"), "now"
        )

    def block(self, selected: Selected, table: Any) -> Expr:
        """The ClientBlock in force, or None."""
        entries: list[tuple[str, Expr]] = []
        for field_ in self.fields("ClientBlock", selected):
            name = field_.name
            if name == "__typename":
                value = self.code.bind("ClientBlock")
            elif name in BLOCK_COLUMNS:
                value = self.column("ClientBlock", name, table, BLOCK_COLUMNS[name])
            elif name == "blockedBy":
                author = self.statement.join(STAFF, joined_on(table.c.blocked_by_id))
                value = self.staff(field_, author)
            else:
                raise NotCompilable(f"ClientBlock.{name}")
            entries.append((field_.key, value))
        return f"({self.code.object(entries)} if {self.blocked(table)} else None)"

    def staff(self, selected: Selected, table: Any) -> Expr:
        """A StaffUser joined as `table`, or None."""
        entries: list[tuple[str, Expr]] = []
        for field_ in self.fields("StaffUser", selected):
            name = field_.name
            if name == "__typename":
                value = self.code.bind("StaffUser")
            elif name == "id":
                value = self.global_id("StaffUser", table)
            elif name in STAFF_COLUMNS:
                value = self.column("StaffUser", name, table, STAFF_COLUMNS[name])
            else:
                raise NotCompilable(f"StaffUser.{name}")
            entries.append((field_.key, value))
        return self.code.object(entries, self.statement.column(table, "id"))

    def money(self, selected: Selected, amount: Expr, currency: Expr) -> Expr:
        entries: list[tuple[str, Expr]] = []
        for field_ in self.fields("Money", selected):
            if field_.name == "__typename":
                value = self.code.bind("Money")
            elif field_.name == "amount":
                value = self.computed(
                    "Money", "amount", self.code.call(money_amount, amount, currency)
                )
            elif field_.name == "currency":
                value = self.computed("Money", "currency", currency)
            else:
                raise NotCompilable(f"Money.{field_.name}")
            entries.append((field_.key, value))
        return self.code.object(entries)

    def entry(self, selected: Selected, table: Any) -> Expr:
        """A CreditEntry read from `table` (the ledger)."""
        column = self.statement.column
        entries: list[tuple[str, Expr]] = []
        for field_ in self.fields("CreditEntry", selected):
            name = field_.name
            if name == "__typename":
                value = self.code.bind("CreditEntry")
            elif name == "id":
                value = self.global_id("CreditEntry", table)
            elif name in ENTRY_COLUMNS:
                value = self.column("CreditEntry", name, table, ENTRY_COLUMNS[name])
            elif name in ENTRY_AMOUNTS:
                amount = column(table, ENTRY_AMOUNTS[name])
                value = self.money(field_, amount, column(table, "currency"))
            elif name == "createdBy":
                author = self.statement.join(STAFF, joined_on(table.c.created_by_id))
                value = self.staff(field_, author)
            else:
                raise NotCompilable(f"CreditEntry.{name}")
            entries.append((field_.key, value))
        return self.code.object(entries)


def joined_on(foreign_key: Any) -> Callable[[Any], Any]:
    """The join condition of a to-one relation: the alias's id is the foreign key."""
    return lambda alias: alias.c.id == foreign_key


@dataclass(frozen=True, slots=True)
class NestedKind:
    """What a nested connection lists: its table, the column naming the owner, its order,
    how one node is compiled, and how many rows an owner (its id column) has."""

    table: Table
    partition: str
    ordering: Callable[[dict[str, Any]], Ordering]
    node: Callable[[Compiler, Selected, Table], Expr]
    count: Callable[[Any], ColumnElement[Any]]


def _unfiltered_ledger(kwargs: dict[str, Any]) -> Ordering:
    """The ledger's order; Fallback for a ledger by kind or period (the resolver's)."""
    if kwargs.get("kinds") or kwargs.get("from_") is not None or kwargs.get("to") is not None:
        raise Fallback
    return NEWEST_ENTRY_FIRST


def _timeless_ordering(order_by: list[ClientOrder] | None) -> Ordering:
    """The ordering of sub-accounts; Fallback for one computed at the request's moment
    (arguments are kept for every request with the same variables)."""
    if any(order.field in TIME_DEPENDENT for order in order_by or ()):
        raise Fallback
    return client_ordering(order_by, now=None)


NESTED: dict[str, NestedKind] = {
    "creditEntries": NestedKind(
        ENTRIES,
        "client_id",
        lambda kwargs: _unfiltered_ledger(kwargs),
        lambda compiler, selected, table: compiler.entry(selected, table),
        lambda owner: rows_of(ENTRIES.c.client_id == owner),
    ),
    "subAccounts": NestedKind(
        CLIENTS,
        "parent_id",
        lambda kwargs: _timeless_ordering(kwargs.get("order_by")),
        lambda compiler, selected, table: compiler.client(selected, table, joined=False),
        lambda owner: rows_of(SUB_ACCOUNTS.c.parent_id == owner),
    ),
}
NESTED_NAMES = frozenset(NESTED)


@dataclass(frozen=True, slots=True)
class ListKind:
    """A to-many field read by one of the loaders' statements (by the owners' ids as
    `keys`): the item's type and, per item field, its column; `empty`: the field says
    whether the list is empty instead."""

    statement: Shaped
    item_type: str | None
    columns: dict[str, str]
    global_ids: str | None = None  # the items' type for `id`
    empty: bool = False


LISTS: dict[str, ListKind] = {
    "connections": ListKind(
        CONNECTIONS_BY_CLIENT,
        "ConnectionInfo",
        {"type": "type", "status": "status", "lastSeenAt": "last_seen_at"},
    ),
    "departments": ListKind(DEPARTMENTS_BY_CLIENT, "Department", {"name": "name"}, "Department"),
    "categories": ListKind(CATEGORIES_BY_CLIENT, "Category", {"name": "name"}, "Category"),
    "allDepartments": ListKind(DEPARTMENTS_BY_CLIENT, None, {}, empty=True),
    "allCategories": ListKind(CATEGORIES_BY_CLIENT, None, {}, empty=True),
}


class OwnedList:
    """A to-many field below a compiled object, read for every owner at once."""

    def __init__(self, above: Compiler, kind: ListKind, selected: Selected) -> None:
        self.kind = kind
        statement = kind.statement
        self.owner_index = statement.columns.index("client_id")
        code = Code()
        if kind.item_type is None:  # emptiness only: no item is written
            self.read = None
            return
        selected_columns = statement.statement.selected_columns
        entries: list[tuple[str, Expr]] = []
        for field_ in above.fields(kind.item_type, selected):
            name = field_.name
            if name == "__typename":
                value = code.bind(kind.item_type)
            elif name == "id" and kind.global_ids is not None:
                index = statement.columns.index("id")
                global_id = code.call(partial(to_global_id, kind.global_ids), f"row[{index}]")
                value = code.leaf(
                    above.graphql_schema, kind.item_type, name, global_id, nullable=False
                )
            elif name in kind.columns:
                index = statement.columns.index(kind.columns[name])
                nullable = bool(getattr(selected_columns[index], "nullable", True))
                value = code.leaf(
                    above.graphql_schema, kind.item_type, name, f"row[{index}]", nullable=nullable
                )
            else:
                raise NotCompilable(f"{kind.item_type}.{name}")
            entries.append((field_.key, value))
        self.read = code.function("rows", f"[{code.object(entries)} for row in rows]")

    async def values(
        self, context: Context, calls: Sequence[Any], owners: list[Any], counts: dict[Any, int]
    ) -> dict[Any, Any]:
        """Each owner's list (or its rows, when only its emptiness is asked)."""
        grouped: dict[Any, list[Any]] = {owner: [] for owner in owners}
        owner_index = self.owner_index
        for row in await context.db.fetch_all(self.kind.statement, {"keys": owners}):
            grouped[row[owner_index]].append(row)
        if self.read is None:
            return grouped
        read = self.read
        return {owner: read(rows) for owner, rows in grouped.items()}


class PricesByCurrency:
    """The active packages' prices in each currency on a level (the loader's statement)."""

    async def values(
        self, context: Context, calls: Sequence[Any], owners: list[Any], counts: dict[Any, int]
    ) -> dict[Any, Any]:
        statement = PACKAGE_PRICES_BY_CURRENCY
        found = await context.db.fetch_all(statement, {"keys": owners})
        grouped: dict[Any, list[Any]] = {owner: [] for owner in owners}
        for row in light_rows(statement.columns, found):
            grouped[row.currency].append(row)
        return grouped


DEFINITION_COLUMNS = ("key", "label", "type", "required", "position")


class CustomFields:
    """`Client.customFields` below a compiled object: every definition, in display order,
    with each owner's value as reads show it (services.custom_fields.readable_value), read by
    the loaders' two statements for every owner at once."""

    def __init__(self, above: Compiler, selected: Selected) -> None:
        code = Code()
        schema = above.graphql_schema
        entries: list[tuple[str, Expr]] = []
        for field_ in above.fields("CustomFieldValue", selected):
            if field_.name == "__typename":
                entries.append((field_.key, code.bind("CustomFieldValue")))
            elif field_.name == "value":
                value = code.call(readable_value, "d", "values.get(d.id)")
                read = code.leaf(schema, "CustomFieldValue", "value", "v", nullable=True)
                entries.append((field_.key, f"(lambda v: {read})({value})"))
            elif field_.name == "definition":
                entries.append((field_.key, self.definition(above, field_, code)))
            else:
                raise NotCompilable(f"CustomFieldValue.{field_.name}")
        self.read = code.function(
            "definitions, values", f"[{code.object(entries)} for d in definitions]"
        )

    @staticmethod
    def definition(above: Compiler, selected: Selected, code: Code) -> Expr:
        schema = above.graphql_schema
        entries: list[tuple[str, Expr]] = []
        for field_ in above.fields("CustomFieldDefinition", selected):
            name = field_.name
            if name == "__typename":
                value = code.bind("CustomFieldDefinition")
            elif name == "id":
                global_id = code.call(partial(to_global_id, "CustomFieldDefinition"), "d.id")
                value = code.leaf(schema, "CustomFieldDefinition", name, global_id, nullable=False)
            elif name == "options":
                value = "(None if d.options is None else list(d.options))"
            elif name in DEFINITION_COLUMNS:
                value = code.leaf(
                    schema, "CustomFieldDefinition", name, f"d.{name}", nullable=False
                )
            else:
                raise NotCompilable(f"CustomFieldDefinition.{name}")
            entries.append((field_.key, value))
        return code.object(entries)

    async def values(
        self, context: Context, calls: Sequence[Any], owners: list[Any], counts: dict[Any, int]
    ) -> dict[Any, Any]:
        db = context.db
        found = await db.fetch_all(CUSTOM_FIELD_DEFINITIONS)
        definitions = light_rows(CUSTOM_FIELD_DEFINITIONS.columns, found)
        by_owner: dict[Any, dict[Any, Any]] = {owner: {} for owner in owners}
        for owner, definition_id, value in await db.fetch_all(
            CUSTOM_FIELD_VALUES_BY_CLIENT, {"keys": owners}
        ):
            by_owner[owner][definition_id] = value
        return {owner: self.read(definitions, values) for owner, values in by_owner.items()}


@dataclass(slots=True)
class NestedCall:
    """A nested connection's arguments for one set of variables, and its statements (made on
    the first request with them, then kept)."""

    ordering: Ordering
    page: PageRequest
    query: Select[Any] | None = None  # the rows with the cursor's columns, unfiltered
    one: Shaped | None = None  # the page of one owner (parameter `owner`)
    many: Shaped | None = None  # the page of each owner (parameter `owners`), a window
    sort_indexes: list[int] = field(default_factory=list)


class NestedConnection:
    """`Client.creditEntries(first, after, last, before)` or `Client.subAccounts(orderBy, …)`
    below a compiled object."""

    def __init__(self, above: Compiler, parent: str, selected: Selected) -> None:
        kind = NESTED[selected.name]
        parent_type = above.graphql_schema.get_type(parent)
        assert isinstance(parent_type, GraphQLObjectType)
        self.graphql_field = parent_type.fields[selected.name]
        strawberry_field: StrawberryField = self.graphql_field.extensions[DEFINITION]
        if any(not isinstance(e, ArgumentProblems) for e in strawberry_field.extensions):
            raise NotCompilable(f"{parent}.{selected.name} has field extensions")
        self.kind = kind
        self.node = selected.node
        self.checks = [e for e in strawberry_field.extensions if isinstance(e, ArgumentProblems)]
        self.convert = arguments_converter(strawberry_field, above.schema)
        self.index = len(above.registry)  # its arguments' place in a call's list
        above.registry.append(self)
        compiler = above.below(kind.table)
        connection = get_named_type(self.graphql_field.type)
        assert isinstance(connection, GraphQLObjectType)
        self.parts: PageParts = connection_parts(
            compiler, connection, selected, lambda node: kind.node(compiler, node, kind.table)
        )
        self.statement = compiler.statement
        self.nested = compiler.nested
        self.partition = kind.table.c[kind.partition]
        self.owner_index = self.statement.index(kind.table, kind.partition)
        self.id_index = self.statement.index(kind.table, "id")
        self.base: Select[Any] = select(*self.statement.columns).select_from(
            self.statement.from_clause()
        )

    def arguments(self, variables: VariableValues) -> NestedCall:
        """The page these variables ask for; Fallback for arguments the resolver refuses."""
        kwargs = self.convert(get_argument_values(self.graphql_field, self.node, variables))
        refuse_problems(self.checks, kwargs)
        try:
            ordering = self.kind.ordering(kwargs)
            page = page_request(
                ordering,
                first=kwargs.get("first"),
                after=kwargs.get("after"),
                last=kwargs.get("last"),
                before=kwargs.get("before"),
            )
        except ApiError:
            raise Fallback from None
        return NestedCall(ordering, page)

    def prepare(self, call: NestedCall) -> None:
        """The call's statements, with the sort columns the cursors need."""
        query, width = self.base, len(self.statement.columns)
        for sort_key in call.ordering.keys:
            name = str(sort_key.column.key)
            index = self.statement.find(self.kind.table, name)
            if index is None:
                query = query.add_columns(self.kind.table.c[name])
                index = width
                width += 1
            call.sort_indexes.append(index)
        one = query.where(self.partition == bindparam("owner"))
        call.one = Shaped(page_query(one, call.ordering, call.page))
        owners: BindParameter[Any] = bindparam("owners", expanding=True)
        call.many = Shaped(pages_statement(query, self.partition, owners, call.ordering, call.page))
        call.query = query

    async def values(
        self, context: Context, calls: Sequence[Any], owners: list[Any], counts: dict[Any, int]
    ) -> dict[Any, Any]:
        """The connection's value for each owner (distinct ids), with their row counts when
        selected."""
        call: NestedCall = calls[self.index]
        if call.query is None:
            self.prepare(call)
        assert call.query is not None
        assert call.one is not None
        assert call.many is not None
        db, page, ordering = context.db, call.page, call.ordering
        if len(owners) == 1:
            found = list(await db.fetch_all(call.one, {"owner": owners[0]}))
            pages = {owners[0]: trim_page(found, page)}
        else:
            grouped: dict[Any, list[Any]] = defaultdict(list)
            owner_index = self.owner_index
            for row in await db.fetch_all(call.many, {"owners": owners}):
                grouped[row[owner_index]].append(row)
            pages = {owner: trim_page(grouped.get(owner, []), page) for owner in owners}
        every_row = [row for rows, _ in pages.values() for row in rows]
        nested = await fill_nested(self.nested, every_row, context, calls)
        sort_indexes, id_index, signature = call.sort_indexes, self.id_index, ordering.signature

        def cursor(row: Sequence[Any]) -> str:
            return encode_position(signature, [row[i] for i in sort_indexes], row[id_index])

        values: dict[Any, Any] = {}
        for owner, (rows, more) in pages.items():

            async def count(owner: Any = owner) -> int:
                return counts.get(owner, 0)

            async def rows_after(owner: Any = owner) -> bool:
                assert call.query is not None
                owned = call.query.where(self.partition == owner)
                return bool((await db.fetch_all(rows_after_statement(owned, ordering, page)))[0][0])

            async def rows_before(owner: Any = owner) -> bool:
                assert call.query is not None
                owned = call.query.where(self.partition == owner)
                exists = rows_before_statement(owned, ordering, page)
                return bool((await db.fetch_all(exists))[0][0])

            values[owner] = await page_value(
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
        return values


# What a level reads below its rows, one statement each for all owners.
Nested = NestedConnection | OwnedList | CustomFields | PricesByCurrency


async def fill_nested(
    nested: list[tuple["Nested", int, int | None]],
    rows: Sequence[Sequence[Any]],
    context: Context,
    calls: Sequence[Any],
) -> list[dict[Any, Any]]:
    """The values of a level's nested connections for the owners in its `rows`, in the
    order the level's code reads them (`nested[k][owner id]`)."""
    found: list[dict[Any, Any]] = []
    for plan, owner_index, count_index in nested:
        owners = list(dict.fromkeys(row[owner_index] for row in rows))
        if None in owners:
            owners.remove(None)
        counts = {}
        if count_index is not None:
            counts = {row[owner_index]: row[count_index] for row in rows}
        found.append(await plan.values(context, calls, owners, counts) if owners else {})
    return found


def refuse_problems(checks: Sequence[ArgumentProblems], kwargs: dict[str, Any]) -> None:
    """Fallback when a field's argument checks find a problem (the executor answers it)."""
    try:
        if any(check.answer(kwargs) is not Undefined for check in checks):
            raise Fallback
    except ApiError:
        raise Fallback from None


def rows_of(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """How many rows meet `condition` (a scalar subquery, correlated to the owner's row)."""
    return select(func.count()).where(condition).scalar_subquery()
