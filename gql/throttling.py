"""Before a query runs: refuse it if it may return too many nodes, then charge its points to
the token's bucket (429 when empty). The response's `extensions.cost` shows the budget."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema
from strawberry.extensions import SchemaExtension

from gql.limits import cost_errors, estimate, unstorable_text
from services.ratelimit import Decision, Rate

MINUTE = timedelta(minutes=1)


@dataclass(slots=True)
class Cost:
    """What a request cost, and the budget it left."""

    nodes: int
    points: int
    expensive: int = 0
    decision: Decision | None = None

    def as_extension(self) -> dict[str, Any]:
        """`throttleStatus.currentlyAvailable` is what the limiter saw left after this
        request: exact with Redis; without it, this process's view (the bucket as it last read
        it, refilled since, plus its unspent leased slice: services/ratelimit.py)."""
        report: dict[str, Any] = {"requestedQueryCost": self.points, "nodes": self.nodes}
        if self.decision is not None:
            rate = self.decision.rate
            report["throttleStatus"] = {
                "maximumAvailable": rate.capacity,
                "currentlyAvailable": int(self.decision.remaining),
                "restoreRate": round(rate.per_second, 3),
            }
        return report


def cost_of(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> Cost:
    """What the operation costs: the nodes it may return, its expensive fields, its points."""
    found = estimate(schema, document, operation_name, variables)
    return Cost(found.nodes, found.points, expensive=found.expensive)


async def charge(context: Any, cost: Cost) -> GraphQLError | None:
    """Take the cost's points from the token's bucket and its owner's, keep the cost in
    `context.cost`; the error that refuses the operation if it is too costly or over a rate
    limit."""
    context.cost = cost
    refusals = cost_errors(cost.nodes, cost.expensive, context.limits)
    if refusals:
        return refusals[0]
    settings = context.settings
    viewer = context.viewer
    if viewer is None or settings.rate_limit_points_per_minute <= 0:  # 0: no rate limits
        return None
    # the token's bucket, then its owner's (with all their tokens, so that minting a fresh
    # token does not escape the limit), in one ask; what a token was refused costs its owner
    # nothing
    budgets = (
        (f"token:{viewer.token_id}", settings.rate_limit_points_per_minute),
        (f"staff:{viewer.staff_id}", settings.staff_rate_limit_points_per_minute),
    )
    buckets = [(key, Rate(budget, MINUTE)) for key, budget in budgets if budget > 0]
    decisions = await context.rate_limiter.take_all(buckets, cost.points, context.now)
    # the token's bucket is shown, or the one that refused
    cost.decision = decision = decisions[-1] if not decisions[-1].allowed else decisions[0]
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
    """Text no database can store, the node limit and the rate limits (per token, per staff
    user), checked before execution (once: a request the compiled path has charged already is
    not charged again)."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if document is None or execution.result is not None:
            yield
            return
        error = unstorable_text(document, execution.variables)
        if error is None and context.cost is None:
            cost = cost_of(
                execution.schema._schema, document, execution.operation_name, execution.variables
            )
            error = await charge(context, cost)
        if error is not None:
            execution.result = ExecutionResult(data=None, errors=[error])
        yield

    def get_results(self) -> dict[str, Any]:
        cost = getattr(self.execution_context.context, "cost", None)
        return {"cost": cost.as_extension()} if cost is not None else {}
