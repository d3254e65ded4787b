"""The schema: domain Query/Mutation pieces merged, plus the extensions every request runs."""

from typing import Annotated, Any

import strawberry
from opentelemetry.trace import TracerProvider
from strawberry.schema.config import StrawberryConfig

from gql.arguments import install_argument_checks, read_enums_leniently
from gql.audit.queries import AuditQuery
from gql.audit.types import AuditEntry
from gql.checks import DocumentChecks, ParseCache
from gql.clients.actions import ClientActionMutation
from gql.clients.bulk import BulkMutation
from gql.clients.changes import ClientChangeQuery
from gql.clients.deleted import DeletedClientMutation, DeletedClientQuery
from gql.clients.facets import FacetQuery
from gql.clients.jobs import BulkJobMutation, BulkJobQuery
from gql.clients.mutations import ClientMutation
from gql.clients.queries import ClientQuery, PasswordQuery
from gql.clients.types import Client
from gql.context import Info
from gql.credits.batches import CreditBatchMutation
from gql.credits.mutations import CreditMutation
from gql.credits.statements import StatementQuery
from gql.credits.types import CreditEntry
from gql.errors import BadUserInput, ErrorMasking
from gql.execution import FastExecutionContext
from gql.node import MAX_NODES, Node, fetch_nodes
from gql.observability import Observed, Tracing
from gql.permissions import IsAuthenticated
from gql.pricing.mutations import PricingMutation
from gql.pricing.queries import PricingQuery
from gql.pricing.types import Package
from gql.reference.mutations import CustomFieldMutation
from gql.reference.queries import ReferenceQuery
from gql.reference.types import Category, CustomFieldDefinition, Department
from gql.scalars import SCALAR_MAP
from gql.staff.mutations import StaffMutation, TokenMutation
from gql.staff.queries import StaffQuery
from gql.staff.types import ApiToken, StaffUser
from gql.system.settings import SystemSettingsMutation, SystemSettingsQuery
from gql.throttling import Throttle


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Any object by its global ID; null if it does not exist or you may not see it.",
        permission_classes=[IsAuthenticated],
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global ID.")],
    ) -> Node | None:
        return (await fetch_nodes(info, [id]))[0]

    @strawberry.field(
        description=f"Objects by global ID, in the same order (at most {MAX_NODES}); null for "
        "each that does not exist or that you may not see.",
        permission_classes=[IsAuthenticated],
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global IDs.")],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise BadUserInput(f"At most {MAX_NODES} ids at a time.")
        return await fetch_nodes(info, ids)


@strawberry.type(description="Everything that can be read. All fields need a token.")
class Query(
    StaffQuery,
    NodeQuery,
    ClientQuery,
    FacetQuery,
    PasswordQuery,
    ReferenceQuery,
    PricingQuery,
    AuditQuery,
    DeletedClientQuery,
    ClientChangeQuery,
    BulkJobQuery,
    SystemSettingsQuery,
    StatementQuery,
):
    pass


@strawberry.type(
    description="Everything that can be changed. All fields but `staffLogin` need a token; "
    "rule violations come back as `userErrors` and change nothing."
)
class Mutation(
    StaffMutation,
    TokenMutation,
    ClientMutation,
    ClientActionMutation,
    BulkMutation,
    BulkJobMutation,
    DeletedClientMutation,
    CreditMutation,
    CreditBatchMutation,
    PricingMutation,
    CustomFieldMutation,
    SystemSettingsMutation,
):
    pass


class Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Strawberry logs every error; ErrorMasking logs the unexpected ones, with the request
        id, and the rest are the caller's mistakes."""


NODE_TYPES: list[type] = [
    Client,
    StaffUser,
    CreditEntry,
    Package,
    Department,
    Category,
    CustomFieldDefinition,
    AuditEntry,
    ApiToken,
]


def build_schema(*, tracer_provider: TracerProvider | None = None) -> Schema:
    """The schema with the extensions every request runs, and OpenTelemetry spans when given
    a tracer provider (see clientdesk/tracing.py)."""
    tracing = [lambda: Tracing(tracer_provider=tracer_provider)] if tracer_provider else []
    install_argument_checks(Query, Mutation, NODE_TYPES, readable_scalars=list(SCALAR_MAP))
    built = Schema(
        query=Query,
        mutation=Mutation,
        types=NODE_TYPES,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=FastExecutionContext,
        extensions=[
            *tracing,
            Observed,  # before ErrorMasking: it reads the codes masking gave
            ErrorMasking,
            ParseCache,  # the caller's token limit
            DocumentChecks,  # the gate, the document limits, then validation (cached)
            Throttle,  # before execution: stored text, node limit, rate limit
        ],
    )
    read_enums_leniently(built._schema)
    return built


schema = build_schema()
