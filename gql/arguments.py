"""Problems with a field's arguments that only the resolver's layer can see, all reported at
once on their own paths: values our scalars and enums could not read (`Unreadable`),
malformed global IDs, and null where an input field refuses it.

A mutation answers them as `userErrors` (its payload, nothing changed); any other field with
one BAD_USER_INPUT error that lists them all in `extensions.problems`. graphql-core's own
coercion would refuse the whole request at the first bad value with a top-level error.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLEnumType, GraphQLError, GraphQLSchema, Undefined
from strawberry.extensions.field_extension import FieldExtension
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    get_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType
from strawberry.utils.str_converters import to_camel_case

from gql.errors import BadUserInput, UserError
from gql.node import parse_global_id
from gql.scalars import Unreadable
from services.errors import ErrorCode

# The metadata key of an input field that may be left out but not set to null.
NOT_NULL = "clientdesk.not_null"


def kept_when_left_out(description: str) -> Any:
    """An update input field that may be left out (the value stays) but not set to null."""
    return strawberry.field(
        default=None,
        description=f"{description} Leave it out to keep the current value (null is refused).",
        metadata={NOT_NULL: True},
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """One argument value that cannot be used, where it is (argument names and positions)."""

    path: list[str]
    code: ErrorCode
    message: str


Walk = Callable[[Any, list[str], list[Problem]], None]


def _nothing(value: Any, path: list[str], problems: list[Problem]) -> None:
    return


def walker(type_: Any, *, not_null: bool = False) -> Walk | None:
    """How to find problems in values of `type_`, or None if it can hold none."""
    if isinstance(type_, LazyType):
        return walker(type_.resolve_type(), not_null=not_null)
    if isinstance(type_, StrawberryMaybe):
        inner = walker(type_.of_type)

        def maybe(value: Any, path: list[str], problems: list[Problem]) -> None:
            if value is None:  # left out
                return
            if value.value is None and not_null:
                problems.append(
                    Problem(path, ErrorCode.NULL_NOT_ALLOWED, "Leave it out instead of null")
                )
            elif inner is not None:
                inner(value.value, path, problems)

        return maybe
    if isinstance(type_, StrawberryOptional):
        inner = walker(type_.of_type)
        return None if inner is None else _unless_none(inner)
    if isinstance(type_, StrawberryList):
        item = walker(type_.of_type)
        if item is None:
            return None

        def each(value: Any, path: list[str], problems: list[Problem]) -> None:
            if value is None or isinstance(value, Unreadable):
                _flag(value, path, problems)
                return
            for index, element in enumerate(value):
                item(element, [*path, str(index)], problems)

        return each
    if type_ is strawberry.ID:
        return _global_id
    if has_enum_definition(type_) or isinstance(type_, StrawberryEnumDefinition):
        return _flag
    definition = get_object_definition(type_)
    if definition is not None:
        return _input_walker(definition) if definition.is_input else None
    if type_ in READABLE_SCALARS:
        return _flag
    return None


def _unless_none(inner: Walk) -> Walk:
    def optional(value: Any, path: list[str], problems: list[Problem]) -> None:
        if value is not None:
            inner(value, path, problems)

    return optional


def _flag(value: Any, path: list[str], problems: list[Problem]) -> None:
    if isinstance(value, Unreadable):
        problems.append(Problem(path, value.code, value.message))


def _global_id(value: Any, path: list[str], problems: list[Problem]) -> None:
    try:
        parse_global_id(value)
    except GraphQLError as error:
        problems.append(Problem(path, ErrorCode.INVALID_ID, error.message))


def _input_walker(definition: StrawberryObjectDefinition) -> Walk | None:
    fields: list[tuple[str, str, Walk]] = []
    for field in definition.fields:
        not_null = bool(field.metadata and field.metadata.get(NOT_NULL))
        walk = walker(field.resolve_type(type_definition=definition), not_null=not_null)
        if walk is not None:
            fields.append((field.python_name, to_camel_case(field.python_name), walk))
    if not fields:
        return None

    def input_object(value: Any, path: list[str], problems: list[Problem]) -> None:
        for python_name, graphql_name, walk in fields:
            walk(getattr(value, python_name, None), [*path, graphql_name], problems)

    return input_object


# Python types of the scalars that answer Unreadable (gql/scalars.py).
READABLE_SCALARS: frozenset[Any] = frozenset()
# More checks of one field's arguments, reported with the others: (type, field) -> check.
Check = Callable[[dict[str, Any]], list[Problem]]
FIELD_CHECKS: dict[tuple[str, str], Check] = {}


def check_arguments(type_name: str, field_name: str, check: Check) -> None:
    """Run `check` on the converted arguments of `type_name.field_name` (Python names) with
    the other argument checks, so that every problem is reported at once."""
    FIELD_CHECKS[(type_name, field_name)] = check


def argument_walkers(field: StrawberryField) -> list[tuple[str, str, Walk]]:
    """(python name, GraphQL name, walker) of each argument of `field` that can hold a
    problem."""
    found = []
    for argument in field.arguments:
        walk = walker(argument.type)
        if walk is not None:
            found.append((argument.python_name, to_camel_case(argument.python_name), walk))
    return found


def find_problems(
    walkers: Sequence[tuple[str, str, Walk]], kwargs: dict[str, Any]
) -> list[Problem]:
    """Every problem in a field's converted arguments."""
    problems: list[Problem] = []
    for python_name, graphql_name, walk in walkers:
        walk(kwargs.get(python_name), [graphql_name], problems)
    return problems


def problems_error(problems: Sequence[Problem]) -> BadUserInput:
    """One BAD_USER_INPUT error listing every problem (the first one's path as `field`)."""
    listed = "; ".join(f"`{'.'.join(p.path)}`: {p.message}" for p in problems)
    return BadUserInput(
        f"{len(problems)} invalid argument value{'s' if len(problems) > 1 else ''}: {listed}.",
        field=".".join(problems[0].path),
        problems=[{"field": p.path, "code": p.code.value, "message": p.message} for p in problems],
    )


def refusal_factory(payload_type: Any) -> Callable[[list[UserError]], Any] | None:
    """How to make a mutation payload that carries only userErrors (lists empty, booleans
    false, the rest null), or None for a payload without userErrors. Fails at schema build
    for a payload field it cannot fill."""
    definition = get_object_definition(payload_type)
    if definition is None or not any(f.python_name == "user_errors" for f in definition.fields):
        return None
    values: dict[str, Any] = {}
    for field in definition.fields:
        type_ = field.resolve_type(type_definition=definition)
        if field.python_name == "user_errors" or field.base_resolver is not None:
            continue  # a field with a resolver is worked out from the others
        if isinstance(type_, StrawberryOptional):
            values[field.python_name] = None
        elif isinstance(type_, StrawberryList):
            values[field.python_name] = []
        elif type_ is bool:
            values[field.python_name] = False
        else:
            raise TypeError(f"cannot refuse {payload_type.__name__}.{field.python_name}")

    def refuse(errors: list[UserError]) -> Any:
        return payload_type(**values, user_errors=errors)

    return refuse


class ArgumentProblems(FieldExtension):
    """Runs before the resolver (after the permission checks): a field whose arguments hold
    problems answers them instead (see the module's doc)."""

    def __init__(
        self,
        walkers: list[tuple[str, str, Walk]],
        refuse: Callable[..., Any] | None,
        check: Check | None = None,
    ):
        self.walkers = walkers
        self.refuse = refuse
        self.check = check

    def answer(self, kwargs: dict[str, Any]) -> Any:
        """Undefined when the arguments hold no problem; else the field's answer (a payload
        with userErrors for a mutation), or BAD_USER_INPUT raised."""
        problems = find_problems(self.walkers, kwargs)
        if self.check is not None:
            problems += self.check(kwargs)
        if not problems:
            return Undefined
        if self.refuse is None:
            raise problems_error(problems)
        return self.refuse(
            [UserError(field=p.path, code=p.code, message=p.message) for p in problems]
        )

    def resolve(self, next_: Callable[..., Any], source: Any, info: Any, **kwargs: Any) -> Any:
        answer = self.answer(kwargs)
        return next_(source, info, **kwargs) if answer is Undefined else answer

    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: Any, **kwargs: Any
    ) -> Any:
        answer = self.answer(kwargs)
        return await next_(source, info, **kwargs) if answer is Undefined else answer


def _object_types(roots: Sequence[type]) -> Iterator[StrawberryObjectDefinition]:
    seen: set[int] = set()
    stack = [get_object_definition(root, strict=True) for root in roots]
    while stack:
        definition = stack.pop()
        if id(definition) in seen:
            continue
        seen.add(id(definition))
        yield definition
        for field in definition.fields:
            for found in _named_object_types(field.type):
                stack.append(found)


def _named_object_types(type_: Any) -> Iterator[StrawberryObjectDefinition]:
    while isinstance(type_, StrawberryOptional | StrawberryList | StrawberryMaybe):
        type_ = type_.of_type
    if isinstance(type_, LazyType):
        type_ = type_.resolve_type()
    definition = get_object_definition(type_)
    if definition is not None and not definition.is_input:
        yield definition
    for member in getattr(type_, "types", ()) or ():  # unions
        yield from _named_object_types(member)


def install_argument_checks(
    query: type, mutation: type, others: Sequence[type], readable_scalars: Sequence[Any]
) -> None:
    """Give every field whose arguments can hold a problem the ArgumentProblems extension
    (first, so that it runs after the permission checks); idempotent."""
    global READABLE_SCALARS
    READABLE_SCALARS = frozenset(readable_scalars)
    mutations = {id(field) for field in get_object_definition(mutation, strict=True).fields}
    for definition in _object_types([query, mutation, *others]):
        for field in definition.fields:
            if any(isinstance(e, ArgumentProblems) for e in field.extensions):
                continue
            walkers = argument_walkers(field)
            check = FIELD_CHECKS.get((definition.name, field.python_name))
            if not walkers and check is None:
                continue
            refuse = refusal_factory(field.type) if id(field) in mutations else None
            field.extensions.insert(0, ArgumentProblems(walkers, refuse, check))


def read_enums_leniently(schema: GraphQLSchema) -> None:
    """Let the schema's own enums answer Unreadable for an unknown value (see the module's
    doc); introspection's enums keep graphql-core's behaviour."""
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLEnumType) or type_.name.startswith("__"):
            continue
        _lenient_enum(type_)


def _lenient_enum(enum: GraphQLEnumType) -> None:
    strict_value = enum.coerce_input_value
    strict_literal = enum.coerce_input_literal
    names = ", ".join(enum.values)
    message = f"Not one of {names}"

    def coerce_input_value(value: Any, hide_suggestions: bool = False) -> Any:
        try:
            return strict_value(value, hide_suggestions)
        except (GraphQLError, ValueError, TypeError):
            return Unreadable(ErrorCode.INVALID_CHOICE, message)

    def coerce_input_literal(node: Any, hide_suggestions: bool = False) -> Any:
        try:
            result = strict_literal(node, hide_suggestions)
        except (GraphQLError, ValueError, TypeError):
            return Unreadable(ErrorCode.INVALID_CHOICE, message)
        return Unreadable(ErrorCode.INVALID_CHOICE, message) if result is Undefined else result

    # graphql-core calls these on the instance: replacing them there changes this enum only
    enum.coerce_input_value = coerce_input_value  # type: ignore[method-assign,assignment]
    enum.coerce_input_literal = coerce_input_literal  # type: ignore[method-assign,assignment]
    enum.parse_value = coerce_input_value  # type: ignore[method-assign,assignment]
