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
from graphql.execution.values import VariableValues
from strawberry import Schema
from strawberry.types.field import StrawberryField

from clientdesk.settings import Settings
from gql.compiled.clients import Call, ClientField
from gql.compiled.fields import FieldPlan, permissions_of
from gql.compiled.objects import DEFINITION
from gql.compiled.outputs import Outputs
from gql.compiled.selections import Fallback, NotCompilable, Selected
from gql.compiled.shapes import Expr, NullValue
from gql.context import Context
from gql.errors import ApiError

log = structlog.get_logger("clientdesk.compiled")

MONEY_MUTATIONS = frozenset({"creditAdd", "creditDeduct", "creditNoteCreate", "creditEntryReverse"})


class MoneyMutationField(FieldPlan):
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
        super().__init__(selected, graphql_field, strawberry_field, schema)
        resolver = strawberry_field.base_resolver
        if resolver is None or not resolver.is_async:
            raise NotCompilable("a mutation without an async resolver")
        self.resolve = cast(Callable[..., Any], resolver.wrapped_func)
        outputs = Outputs(schema, fragments)
        payload_type = get_nullable_type(graphql_field.type)
        assert isinstance(payload_type, GraphQLObjectType)
        self.client: ClientField | None = None

        def client(field: Selected) -> Expr:
            if self.client is not None:
                raise NotCompilable("the payload's client twice")
            client_field = payload_type.fields["client"]
            definition: StrawberryField = client_field.extensions[DEFINITION]
            self.permissions += permissions_of(definition)  # the payload client's too
            field.no_arguments()
            self.client = ClientField(field, client_field, definition, schema, fragments, settings)
            return "client"

        outputs.special[(payload_type.name, "client")] = client
        written = outputs.value(graphql_field.type, selected, "payload", 0)
        self.write = outputs.code.function("payload, client", written)

    def arguments(self, variables: VariableValues) -> Call:
        nested = self.client.nested_arguments(variables) if self.client is not None else []
        return Call(self.kwargs(variables), nested)

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
