"""Generated code that writes Python objects (Strawberry types whose fields are plain
attributes: a payload, a Money, a price) as graphql-core's executor writes them."""

from collections.abc import Callable

from graphql import (
    FragmentDefinitionNode,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from strawberry import Schema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from gql.compiled.selections import NotCompilable, Selected, collect, subselections
from gql.compiled.shapes import Code, Expr, null_value

DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF


class Outputs:
    """Expressions that write the selected fields of Python objects (Strawberry types whose
    fields are plain attributes) as graphql-core's executor writes them."""

    def __init__(self, schema: Schema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema = schema._schema
        self.fragments = fragments
        self.code = Code()
        # fields written by the caller rather than read from the object: (type, field) -> name
        self.special: dict[tuple[str, str], Callable[[Selected], Expr]] = {}

    def value(
        self, field_type: GraphQLOutputType, selected: Selected, expr: Expr, depth: int
    ) -> Expr:
        """The output of `expr`, a value of `field_type`."""
        named = get_nullable_type(field_type)
        if isinstance(named, GraphQLList):
            item = f"_item{depth}"
            each = self.value(named.of_type, selected, item, depth + 1)
            output = f"[{each} for {item} in {expr}]"
        elif is_leaf_type(named):
            output = self.code.serialize(named, expr)
        elif isinstance(named, GraphQLObjectType):
            output = self.object(named, selected, expr, depth)
        else:
            raise NotCompilable(f"{selected.name}: {named}")
        if is_non_null_type(field_type):
            where = self.code.bind(selected.name)
            return f"({self.code.call(null_value, where)} if {expr} is None else {output})"
        return output if output == expr else f"(None if {expr} is None else {output})"

    def object(
        self, object_type: GraphQLObjectType, selected: Selected, expr: Expr, depth: int
    ) -> Expr:
        entries: list[tuple[str, Expr]] = []
        for field in collect(object_type, subselections(selected), self.fragments):
            if field.name == "__typename":
                entries.append((field.key, self.code.bind(object_type.name)))
                continue
            special = self.special.get((object_type.name, field.name))
            if special is not None:
                entries.append((field.key, special(field)))
                continue
            field.no_arguments()
            graphql_field = object_type.fields[field.name]
            definition: StrawberryField | None = graphql_field.extensions.get(DEFINITION)
            if definition is None or definition.base_resolver is not None or definition.extensions:
                raise NotCompilable(f"{object_type.name}.{field.name} is resolved")
            attribute = f"{expr}.{definition.python_name}"
            entries.append((field.key, self.value(graphql_field.type, field, attribute, depth)))
        return self.code.object(entries)
