"""The money mutations, compiled: creditAdd, creditDeduct, creditNoteCreate and
creditEntryReverse run their own resolvers (the same services, rules, locks and idempotency),
without graphql-core's executor around them, and their payloads are written by generated code
over the payload objects, as the executor would write them.

A mutation must never run twice: everything that can leave a request to the executor happens
before the resolver runs — the arguments' problems, the permissions (the payload's `client`
field's too), the rate limit. A refusal raised by the resolver (FORBIDDEN) comes with its
transaction rolled back: the executor then runs the request and reports it. Once the
resolver has answered, the response is written here, whatever happens.
"""

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import structlog
from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    get_nullable_type,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry import Schema
from strawberry.permission import PermissionExtension
from strawberry.types.field import StrawberryField

from clientdesk.settings import Settings
from gql.arguments import ArgumentProblems
from gql.compiled.arguments import arguments_converter
from gql.compiled.clients import Call, ClientField
from gql.compiled.objects import DEFINITION, refuse_problems
from gql.compiled.outputs import Outputs
from gql.compiled.selections import Fallback, NotCompilable, Selected
from gql.compiled.shapes import Expr, NullValue
from gql.context import Context
from gql.errors import ApiError

log = structlog.get_logger("clientdesk.compiled")

MONEY_MUTATIONS = frozenset({"creditAdd", "creditDeduct", "creditNoteCreate", "creditEntryReverse"})


class MoneyMutationField:
    """One money mutation root field: its resolver, and its payload written by generated code
    (the payload's `client` is read like `client(id)`)."""

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
        resolver = strawberry_field.base_resolver
        if resolver is None or not resolver.is_async:
            raise NotCompilable("a mutation without an async resolver")
        self.resolve = cast(Callable[..., Any], resolver.wrapped_func)
        self.key = selected.key
        self.node = selected.node
        self.graphql_field = graphql_field
        self.convert = arguments_converter(strawberry_field, schema)
        self.checks = [e for e in strawberry_field.extensions if isinstance(e, ArgumentProblems)]
        self.permissions = [
            permission
            for extension in strawberry_field.extensions
            if isinstance(extension, PermissionExtension)
            for permission in extension.permissions
        ]
        outputs = Outputs(schema, fragments)
        payload_type = get_nullable_type(graphql_field.type)
        assert isinstance(payload_type, GraphQLObjectType)
        self.client: ClientField | None = None
        self.client_permissions: list[Any] = []

        def client(field: Selected) -> Expr:
            if self.client is not None:
                raise NotCompilable("the payload's client twice")
            client_field = payload_type.fields["client"]
            definition: StrawberryField = client_field.extensions[DEFINITION]
            self.client_permissions = [
                permission
                for extension in definition.extensions
                if isinstance(extension, PermissionExtension)
                for permission in extension.permissions
            ]
            field.no_arguments()
            self.client = ClientField(field, client_field, definition, schema, fragments, settings)
            return "client"

        outputs.special[(payload_type.name, "client")] = client
        written = outputs.value(graphql_field.type, selected, "payload", 0)
        self.write = outputs.code.function("payload, client", written)

    def arguments(self, variables: VariableValues) -> Call:
        kwargs = self.convert(get_argument_values(self.graphql_field, self.node, variables))
        refuse_problems(self.checks, kwargs)
        nested = self.client.nested_arguments(variables) if self.client is not None else []
        return Call(kwargs, nested)

    def permit(self, context: Context, call: Call) -> None:
        """The mutation's permissions and the payload's client's: Fallback if one refuses."""
        info = SimpleNamespace(context=context)
        for permission in [*self.permissions, *self.client_permissions]:
            try:
                allowed = permission.has_permission(None, info, **call.kwargs)
            except ApiError:
                raise Fallback from None
            if not allowed:
                raise Fallback

    async def run(self, context: Context, call: Call) -> Any:
        """The payload, as the response shows it. Fallback only if the resolver refused with
        nothing done (an ApiError); after it answered, NotAnswered for anything that fails."""
        info = SimpleNamespace(context=context)
        try:
            payload = await self.resolve(None, info, **call.kwargs)
        except ApiError:  # refused with its transaction rolled back: nothing was done
            raise Fallback from None
        except Exception as error:  # whether it was done is not known: never run it again
            raise NotAnswered(self.key, self.node, error) from error
        try:
            client = None
            if self.client is not None and payload is not None:
                client = await self.client.client(context, payload.client_id, call.nested)
            return self.write(payload, client)
        except Exception as error:  # the change is made: never run it again
            raise NotAnswered(self.key, self.node, error) from error


class NotAnswered(Exception):
    """A mutation ran but its payload could not be written: the response says so."""

    def __init__(self, key: str, node: Any, error: Exception) -> None:
        super().__init__(key)
        self.key = key
        self.node = node
        self.error = error

    def response_error(self, request_id: str) -> dict[str, Any]:
        """The error graphql-core's executor and our error masking would report."""
        log.error(
            "resolver_failed",
            path=[self.key],
            request_id=request_id,
            exc_info=(type(self.error), self.error, self.error.__traceback__),
        )
        error = GraphQLError(
            f"Internal server error. Quote request id {request_id} when reporting it.",
            nodes=self.node,
            path=[self.key],
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
        return dict(error.formatted)


__all__ = ["MONEY_MUTATIONS", "MoneyMutationField", "NotAnswered", "NullValue"]
