"""Before a query runs: refuse it if it may return too many nodes, then charge its points to
the token's bucket (429 when empty). The response's `extensions.cost` shows the budget."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)
from strawberry.extensions import SchemaExtension

from gql.limits import count_nodes, limit_error, points
from services.ratelimit import Decision, Rate

MINUTE = timedelta(minutes=1)


@dataclass(slots=True)
class Cost:
    """What a request cost, and the budget it left."""

    nodes: int
    points: int
    decision: Decision | None = None

    def as_extension(self) -> dict[str, Any]:
        report: dict[str, Any] = {"requestedQueryCost": self.points, "nodes": self.nodes}
        if self.decision is not None:
            rate = self.decision.rate
            report["throttleStatus"] = {
                "maximumAvailable": rate.capacity,
                "currentlyAvailable": int(self.decision.remaining),
                "restoreRate": round(rate.per_second, 3),
            }
        return report


def _mutation_fields(document: Any, operation_name: str | None) -> int:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    return sum(len(o.selection_set.selections) for o in operations[:1])


def cost_of(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    *,
    mutation: bool,
) -> Cost:
    """What the operation costs: the nodes it may return, and its points."""
    nodes = count_nodes(schema, document, operation_name, variables)
    fields = _mutation_fields(document, operation_name)
    return Cost(nodes, points(mutation=mutation, nodes=nodes, fields=fields))


async def charge(context: Any, cost: Cost) -> GraphQLError | None:
    """Take the cost's points from the token's bucket and keep the cost in `context.cost`;
    the error that refuses the operation if it is too costly or over the rate limit."""
    context.cost = cost
    limit = context.limits.max_nodes
    if cost.nodes > limit:
        message = f"The query may return {cost.nodes:,} nodes; at most {limit:,}: ask for less."
        return limit_error("QUERY_TOO_COSTLY", message)
    budget = context.settings.rate_limit_points_per_minute
    if context.viewer is not None and budget > 0:
        decision = cost.decision = await context.rate_limiter.take(
            f"token:{context.viewer.token_id}", cost.points, Rate(budget, MINUTE), context.now
        )
        if not decision.allowed:
            context.retry_after = decision.retry_after
            message = (
                f"Rate limit: this costs {cost.points} points and {int(decision.remaining)} "
                f"are left; try again in {decision.wait_seconds} s."
            )
            extensions = {"code": "RATE_LIMITED", "retryAfter": round(decision.retry_after, 1)}
            return GraphQLError(message, extensions=extensions)
    return None


class Throttle(SchemaExtension):
    """The node limit and the per-token rate limit, checked before execution (once: a request
    the compiled path has charged already is not charged again)."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if document is None or execution.result is not None or context.cost is not None:
            yield
            return
        cost = cost_of(
            execution.schema._schema,
            document,
            execution.operation_name,
            execution.variables,
            mutation=execution.operation_type.value == "mutation",
        )
        error = await charge(context, cost)
        if error is not None:
            execution.result = ExecutionResult(data=None, errors=[error])
        yield

    def get_results(self) -> dict[str, Any]:
        cost = getattr(self.execution_context.context, "cost", None)
        return {"cost": cost.as_extension()} if cost is not None else {}
