"""What every compiled root field shares: its arguments converted and checked by the field's
own rules, and its own permission classes."""

from types import SimpleNamespace
from typing import Any

from graphql import GraphQLField
from graphql.execution.values import VariableValues, get_argument_values
from strawberry import Schema
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types.field import StrawberryField

from gql.arguments import ArgumentProblems
from gql.compiled.arguments import arguments_converter
from gql.compiled.objects import refuse_problems
from gql.compiled.selections import Fallback, NotCompilable, Selected
from gql.context import Context
from gql.errors import ApiError


def permissions_of(field: StrawberryField) -> list[BasePermission]:
    """The permission classes of a field."""
    return [
        permission
        for extension in field.extensions
        if isinstance(extension, PermissionExtension)
        for permission in extension.permissions
    ]


class FieldPlan:
    """A root field's arguments and permissions, as its resolver would have them checked."""

    def __init__(
        self,
        selected: Selected,
        graphql_field: GraphQLField,
        strawberry_field: StrawberryField,
        schema: Schema,
    ) -> None:
        if any(
            not isinstance(extension, PermissionExtension | ArgumentProblems)
            for extension in strawberry_field.extensions
        ):
            raise NotCompilable("field extensions")
        self.checks = [e for e in strawberry_field.extensions if isinstance(e, ArgumentProblems)]
        self.key = selected.key
        self.node = selected.node
        self.graphql_field = graphql_field
        self.convert = arguments_converter(strawberry_field, schema)
        self.permissions = permissions_of(strawberry_field)

    def kwargs(self, variables: VariableValues) -> dict[str, Any]:
        """The resolver's keyword arguments; Fallback for those its checks refuse."""
        kwargs = self.convert(get_argument_values(self.graphql_field, self.node, variables))
        refuse_problems(self.checks, kwargs)
        return kwargs

    def permit(self, context: Context, call: Any) -> None:
        """Check the permissions; Fallback when one refuses (the executor then reports it)."""
        info = SimpleNamespace(context=context)
        for permission in self.permissions:
            try:
                allowed = permission.has_permission(None, info, **call.kwargs)  # type: ignore[arg-type]
            except ApiError:
                raise Fallback from None
            if not allowed:
                raise Fallback
