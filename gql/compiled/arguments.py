"""Arguments turned into the resolver's Python values by converters made once per field.

graphql-core has already coerced the values (enums to members, scalars parsed); what is
left is what Strawberry's `convert_arguments` does on every call: input objects become their
classes, lists are copied. Strawberry finds out how for every value each time; this decides
it once. Types it does not know (Maybe, custom `from_input`, global IDs) are not compiled.
"""

from collections.abc import Callable
from dataclasses import MISSING
from typing import Any

from strawberry import Schema
from strawberry.relay.types import GlobalID
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType

from gql.compiled.selections import NotCompilable

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def converter(type_: Any, schema: Schema) -> Convert:
    """How a coerced value of `type_` becomes what the resolver receives."""
    if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
        raise NotCompilable(f"argument type {type_}")
    if isinstance(type_, StrawberryOptional):
        return converter(type_.of_type, schema)
    if isinstance(type_, LazyType):
        return converter(type_.resolve_type(), schema)
    if isinstance(type_, StrawberryList):
        item = converter(type_.of_type, schema)
        if item is _same:  # copied: graphql-core shares default values between requests
            return lambda value: None if value is None else list(value)
        return lambda value: None if value is None else [item(x) for x in value]
    if has_enum_definition(type_) or isinstance(type_, StrawberryEnumDefinition):
        return _same
    definition = getattr(type_, "__strawberry_definition__", None)
    if definition is None:  # a scalar: graphql-core parsed it already
        if type_ in schema.schema_converter.scalar_registry or isinstance(type_, type):
            return _same
        raise NotCompilable(f"argument type {type_}")
    if not definition.is_input or definition.from_input is not None:
        raise NotCompilable(f"argument type {type_}")
    names = schema.config.name_converter
    fields = [
        (
            names.from_field(field),
            field.python_name,
            converter(field.resolve_type(type_definition=definition), schema),
        )
        for field in definition.fields
    ]
    required = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }

    def convert(value: Any) -> Any:
        if value is None:
            return None
        kwargs = dict(required)
        for graphql_name, python_name, convert_field in fields:
            if graphql_name in value:
                kwargs[python_name] = convert_field(value[graphql_name])
        return type_(**kwargs)

    return convert


def arguments_converter(
    field: StrawberryField, schema: Schema
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """How graphql-core's argument values become the resolver's keyword arguments."""
    names = schema.config.name_converter
    parts = [
        (names.from_argument(argument), argument.python_name, converter(argument.type, schema))
        for argument in field.arguments
    ]

    def convert(raw: dict[str, Any]) -> dict[str, Any]:
        return {
            python_name: convert_value(raw[graphql_name])
            for graphql_name, python_name, convert_value in parts
            if graphql_name in raw
        }

    return convert
