"""What a compiled selection is made of: the columns its statement selects, and the Python
code that turns result rows into the response's values, as graphql-core would serialize them.

A selection compiles to one Python expression per object, over `row` (a result row) and
`now` (the request's instant): a dict display with an entry per selected field, nested for
joined objects. The expressions for a list are made into one function with `exec`, so a page
of rows is read by one list comprehension, with no call per field. The source holds only our
own templates and column numbers: every value it refers to, response keys (aliases) included,
is bound by a generated name, never written into the source.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from sqlalchemy import ColumnElement, FromClause, Table

from gql.compiled.selections import NotCompilable
from gql.scalars import DATETIME_SCALAR_NAME

Expr = str  # Python source of an expression over `row` and `now`
# Built-in scalars whose output is the Python value itself when it has the right type (str,
# int, bool): what graphql-core's serializers return for such values unchanged.
AS_IS = {GraphQLString.name, GraphQLID.name, GraphQLInt.name, GraphQLBoolean.name}
# Scalars whose values orjson writes exactly as their serializer would: DateTime serializes
# an aware UTC datetime with `isoformat()`, which is orjson's RFC 3339 form (tested).
NATIVE = {DATETIME_SCALAR_NAME}


class NullValue(Exception):
    """A non-null field had no value: graphql-core's executor must answer instead."""


def null_value(where: str) -> Any:
    raise NullValue(where)


@dataclass(slots=True)
class Code:
    """Expressions being generated, and the values they refer to by name."""

    names: dict[str, Any] = field(default_factory=lambda: {"null_value": null_value})

    def bind(self, value: Any) -> str:
        """A name for `value` in the generated code."""
        name = f"_v{len(self.names)}"
        self.names[name] = value
        return name

    def call(self, function: Callable[..., Any], *arguments: Expr) -> Expr:
        return f"{self.bind(function)}({', '.join(arguments)})"

    def function(self, parameters: str, expression: Expr) -> Callable[..., Any]:
        """A function of `parameters` (a fixed list of our own names) returning `expression`."""
        source = f"def compiled({parameters}):\n    return {expression}\n"
        namespace = dict(self.names)
        exec(compile(source, "<compiled selection>", "exec"), namespace)
        function: Callable[..., Any] = namespace["compiled"]
        return function

    def leaf(
        self, schema: GraphQLSchema, parent: str, name: str, value: Expr, *, nullable: bool
    ) -> Expr:
        """A leaf field's output: `value` serialized by the field's GraphQL type. `nullable`
        says whether `value` may be None (a nullable column)."""
        parent_type = schema.get_type(parent)
        assert isinstance(parent_type, GraphQLObjectType)
        field_type = parent_type.fields[name].type
        named = get_nullable_type(field_type)
        if not is_leaf_type(named):
            raise NotCompilable(f"{parent}.{name} is not a leaf")
        output = self.serialize(named, value)
        if not nullable:
            return output
        if is_non_null_type(field_type):
            where = self.bind(f"{parent}.{name}")
            return f"({self.call(null_value, where)} if {value} is None else {output})"
        return output if output == value else f"(None if {value} is None else {output})"

    def serialize(self, named: Any, value: Expr) -> Expr:
        """A leaf type's output of `value` (not None), as its serializer writes it."""
        if named.name in AS_IS or named.name in NATIVE:
            return value
        if isinstance(named, GraphQLEnumType) and hasattr(named, "wrapped_cls"):
            # a Strawberry enum: its names by member, worked out once by its own serializer
            names = {member: named.coerce_output_value(member) for member in named.wrapped_cls}
            return f"{self.bind(names)}[{value}]"
        return self.call(named.coerce_output_value, value)

    def object(self, entries: list[tuple[str, Expr]], present: Expr | None = None) -> Expr:
        """A dict of `entries` in order; None where `present` (an expression) is None."""
        display = "{" + ", ".join(f"{self.bind(key)}: {value}" for key, value in entries) + "}"
        return display if present is None else f"(None if {present} is None else {display})"


@dataclass(slots=True)
class Statement:
    """The SELECT list and outer joins of one compiled statement, as readers ask for them."""

    root: Table
    columns: list[ColumnElement[Any]] = field(default_factory=list)
    joins: list[tuple[FromClause, ColumnElement[bool]]] = field(default_factory=list)
    _indexes: dict[tuple[str, str], int] = field(default_factory=dict)

    def column(self, table: FromClause, name: str) -> Expr:
        """`table.name` in a result row (the column is selected if it was not yet)."""
        return f"row[{self.index(table, name)}]"

    def index(self, table: FromClause, name: str) -> int:
        """The position of `table.name` in the result rows (added if new)."""
        key = (table.name, name)  # type: ignore[attr-defined]
        found = self._indexes.get(key)
        if found is None:
            column: ColumnElement[Any] = table.c[name]
            if table is not self.root:  # joined tables' columns get names of their own
                column = column.label(f"{table.name}_{name}")  # type: ignore[attr-defined]
            found = self._indexes[key] = len(self.columns)
            self.columns.append(column)
        return found

    def expression(self, name: str, element: ColumnElement[Any]) -> int:
        """The position of a computed column (labelled `name`) in the result rows."""
        found = self._indexes.get(("", name))
        if found is None:
            found = self._indexes[("", name)] = len(self.columns)
            self.columns.append(element.label(name))
        return found

    def find(self, table: FromClause, name: str) -> int | None:
        """The position of `table.name` in the result rows, if selected."""
        return self._indexes.get((table.name, name))  # type: ignore[attr-defined]

    def nullable(self, table: FromClause, name: str) -> bool:
        return bool(table.c[name].nullable)

    def join(self, target: Table, on: Callable[[FromClause], ColumnElement[bool]]) -> FromClause:
        """A new alias of `target`, outer-joined to the statement on `on(alias)`."""
        alias = target.alias(f"j{len(self.joins) + 1}")
        self.joins.append((alias, on(alias)))
        return alias

    def from_clause(self) -> FromClause:
        joined: FromClause = self.root
        for alias, condition in self.joins:
            joined = joined.outerjoin(alias, condition)
        return joined
