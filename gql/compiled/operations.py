"""Which requests the compiled path answers, and the cache of compiled operations."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values
from starlette.requests import Request
from starlette.responses import Response
from strawberry import Schema

from clientdesk.settings import Settings
from gql.compiled.clients import ClientField, ClientsField, NodeField, NodesField, RootField
from gql.compiled.mutations import MONEY_MUTATIONS, MoneyMutationField, NotAnswered
from gql.compiled.objects import DEFINITION
from gql.compiled.resolved import ResolvedField
from gql.compiled.selections import Fallback, NotCompilable, Selected, collect
from gql.compiled.shapes import NullValue
from gql.context import Context
from gql.documents import sent_document
from gql.limits import (
    Limits,
    check_document,
    cost_errors,
    unstorable_literals,
    unstorable_variables,
)
from gql.scalars import encode_response
from gql.throttling import Cost, charge, cost_of

log = structlog.get_logger("clientdesk.compiled")

# Longer documents are not worth a cache entry (and would make the cache large).
MAX_QUERY_LENGTH = 10_000
MAX_CACHED = 512
MAX_PREPARED = 256  # per operation
# With this many times an operation's points left in its token's bucket at its last request,
# the rate limiter and the database are asked at once (a refusal is then rare, and only costs
# the rows thrown away); with fewer, the database only after the rate limiter said yes.
SPECULATE_WHEN_POINTS_LEFT = 50
# The root fields the compiler knows.
ROOT_FIELDS: dict[str, type[RootField]] = {
    "clients": ClientsField,
    "client": ClientField,
    "node": NodeField,
    "nodes": NodesField,
}
MUTATION_FIELDS = dict.fromkeys(MONEY_MUTATIONS, MoneyMutationField)
Plan = RootField | MoneyMutationField | ResolvedField


@dataclass(frozen=True, slots=True)
class Prepared:
    """What an operation's variables make of it: each root field's arguments (or its constant
    value), and the operation's cost. Shared by requests with the same variables: never
    changed after it is made."""

    arguments: list[Any]
    nodes: int
    points: int


@dataclass(frozen=True, slots=True)
class CompiledOperation:
    """A validated operation whose every root field is compiled."""

    document: DocumentNode
    operation: OperationDefinitionNode
    roots: list[tuple[str, "Plan | str"]]  # response key, field plan or __typename
    mutation: bool  # then one plan, run after the rate limiter said yes
    prepared: dict[bytes, Prepared] = field(default_factory=dict)  # by the variables' JSON


class CompiledOperations:
    """The app's compiled operations, by query text and operation name."""

    def __init__(self, schema: Schema, limits: Limits, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        self.graphql_schema: GraphQLSchema = schema._schema
        self.limits = limits
        self.max_tokens = limits.max_tokens
        self.plans: dict[tuple[str, str | None], CompiledOperation | None] = {}
        # points each token had left after its last request here (for SPECULATE_WHEN_POINTS_LEFT)
        self.remaining: dict[int, float] = {}
        self.answered = 0  # requests answered here, and compiled ones left to the executor
        self.declined = 0

    def plan(self, query: str, operation_name: str | None) -> CompiledOperation | None:
        """The compiled operation for a request, or None when the executor must answer."""
        key = (query, operation_name)
        if key in self.plans:
            return self.plans[key]
        compiled = self.compile(query, operation_name)
        if len(self.plans) >= MAX_CACHED:
            self.plans.clear()
        self.plans[key] = compiled
        return compiled

    def compile(self, query: str, operation_name: str | None) -> CompiledOperation | None:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is not None:
            operations = [o for o in operations if o.name and o.name.value == operation_name]
        # the cheap refusals first: validation is the dearest part of compiling
        if len(operations) != 1 or operations[0].operation is OperationType.SUBSCRIPTION:
            return None
        if check_document(document, self.limits) or unstorable_literals(document):
            return None
        if validate(self.graphql_schema, document, specified_rules):
            return None
        operation = operations[0]
        if operation.directives or any(v.directives for v in operation.variable_definitions or ()):
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        mutation = operation.operation is OperationType.MUTATION
        root_type = (
            self.graphql_schema.mutation_type if mutation else self.graphql_schema.query_type
        )
        assert root_type is not None
        try:
            roots: list[tuple[str, Plan | str]] = []
            for selected in collect(root_type, (operation.selection_set,), fragments):
                roots.append((selected.key, self.root(root_type, selected, fragments)))
        except NotCompilable:
            return None
        # a mutation is run by one plan alone: nothing after it may leave the request to the
        # executor, which would run it again
        if mutation and sum(not isinstance(plan, str) for _, plan in roots) != 1:
            return None
        return CompiledOperation(document, operation, roots, mutation)

    def root(
        self,
        root_type: GraphQLObjectType,
        selected: Selected,
        fragments: dict[str, FragmentDefinitionNode],
    ) -> "Plan | str":
        if selected.name == "__typename":
            return root_type.name
        if selected.name not in root_type.fields or len(selected.nodes) != 1:
            raise NotCompilable(selected.name)  # introspection, or merged twice
        plan: type[Plan] | None
        if root_type.name == "Mutation":
            plan = MUTATION_FIELDS.get(selected.name)
        else:
            plan = ROOT_FIELDS.get(selected.name, ResolvedField)
        if plan is None:
            raise NotCompilable(selected.name)
        graphql_field: GraphQLField = root_type.fields[selected.name]
        return plan(
            selected,
            graphql_field,
            graphql_field.extensions[DEFINITION],
            self.schema,
            fragments,
            self.settings,
        )

    async def respond(self, request: Request, context: Context) -> Response | None:
        """The response to a POSTed query the compiler knows, or None to leave it to the
        executor: other requests, anonymous ones, and any that would end in an error."""
        if request.method != "POST" or context.viewer is None:
            return None
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return None
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(payload, dict) or payload.keys() - {
            "query",
            "documentId",
            "variables",
            "operationName",
        }:
            return None
        query = sent_document(request) or payload.get("query")
        name = payload.get("operationName")
        variables = payload.get("variables") or {}
        if (
            not isinstance(query, str)
            or len(query) > MAX_QUERY_LENGTH
            or not isinstance(name, str | None)
            or not isinstance(variables, dict)
        ):
            return None
        compiled = self.plan(query, name)
        if compiled is None:
            return None
        named = compiled.operation.name
        context.operation_name = named.value if named else None
        response = await self.run(compiled, context, name, variables)
        if response is None:
            self.declined += 1
        else:
            self.answered += 1
        return response

    async def run(
        self,
        compiled: CompiledOperation,
        context: Context,
        operation_name: str | None,
        variables: dict[str, Any],
    ) -> Response | None:
        if unstorable_variables(variables) is not None:
            return None  # the executor refuses it
        variables_key = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        prepared = compiled.prepared.get(variables_key)
        if prepared is None:
            coerced = get_variable_values(
                self.graphql_schema, compiled.operation.variable_definitions or (), variables
            )
            if isinstance(coerced, list):  # variables that do not fit: the executor says why
                return None
            try:
                arguments = [
                    plan if isinstance(plan, str) else plan.arguments(coerced)
                    for _, plan in compiled.roots
                ]
            except Fallback:  # arguments the resolvers refuse: the executor says why
                return None
            cost = cost_of(self.graphql_schema, compiled.document, operation_name, variables)
            if cost_errors(cost.nodes, cost.expensive, self.limits):
                return None  # the executor refuses it
            prepared = Prepared(arguments, cost.nodes, cost.points)
            if len(compiled.prepared) >= MAX_PREPARED:
                compiled.prepared.clear()
            compiled.prepared[variables_key] = prepared
        try:
            for (_, plan), call in zip(compiled.roots, prepared.arguments, strict=True):
                if not isinstance(plan, str):
                    plan.permit(context, call)
        except Fallback:
            return None
        cost = Cost(prepared.nodes, prepared.points)
        viewer = context.viewer
        assert viewer is not None
        plenty = (
            self.remaining.get(viewer.token_id, 0.0) >= SPECULATE_WHEN_POINTS_LEFT * cost.points
        )
        if plenty and not compiled.mutation:
            # The token had plenty of points a moment ago: ask the rate limiter and the
            # database at once, and throw the rows away if it refuses after all.
            charging = asyncio.ensure_future(charge(context, cost))
            try:
                data = await self.execute(compiled, prepared, context)
            finally:
                refused = await charging
        else:
            refused = await charge(context, cost)
            try:
                data = (
                    None if refused is not None else await self.execute(compiled, prepared, context)
                )
            except NotAnswered as failed:  # a mutation ran: never again
                errors = [failed.response_error(context.request_id)]
                body = {"data": None, "errors": errors, "extensions": {"cost": cost.as_extension()}}
                return Response(encode_response(body), media_type="application/json")
        if cost.decision is not None:
            if len(self.remaining) >= MAX_PREPARED:
                self.remaining.clear()
            self.remaining[viewer.token_id] = cost.decision.remaining
        if refused is not None:  # the executor charges again, and reports the refusal
            context.cost = context.retry_after = None
            return None
        if data is None:
            return None
        body = {"data": data, "extensions": {"cost": cost.as_extension()}}
        return Response(encode_response(body), media_type="application/json")

    async def execute(
        self, compiled: CompiledOperation, prepared: Prepared, context: Context
    ) -> dict[str, Any] | None:
        """The operation's data, or None when the executor must answer after all."""
        data: dict[str, Any] = {}
        try:
            for (response_key, plan), call in zip(compiled.roots, prepared.arguments, strict=True):
                value = plan if isinstance(plan, str) else await plan.run(context, call)
                data[response_key] = value
        except (Fallback, NullValue):
            return None
        except NotAnswered:
            raise  # a mutation ran: answered here (see respond)
        except Exception:  # the executor runs it again and reports what it finds
            if compiled.mutation:
                raise
            log.warning("compiled_operation_failed", exc_info=True)
            return None
        return data
