"""Reading the audit log."""

from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy import select

from db.enums import Scope
from db.keyset import Ordering
from db.models import AuditEntry as AuditEntryModel
from gql.audit.types import AuditEntry
from gql.context import Info
from gql.errors import BadUserInput
from gql.node import parse_global_id, pk_of
from gql.pagination import AfterArg, Connection, FirstArg, page_request, paginate
from gql.permissions import HasScope
from services.validation import UNSTORABLE, column_length

NEWEST_FIRST = Ordering(keys=(), tiebreaker=AuditEntryModel.__table__.c.id, descending=True)
# Changes to staff users and their tokens are for admins' eyes only.
ADMIN_TARGETS = ("StaffUser", "ApiToken")
MAX_ACTION = column_length(AuditEntryModel.action)


@strawberry.input(description="Which audit entries to list; all given conditions must hold.")
class AuditLogFilter:
    target_id: strawberry.ID | None = strawberry.field(
        default=None, description="Changes to this object (a client's ID, say)."
    )
    actor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Changes made by this staff user."
    )
    actions: list[str] | None = strawberry.field(
        default=None, description='Only these actions, e.g. ["client.delete"].'
    )
    occurred_after: datetime | None = strawberry.field(default=None, description="At or after.")
    occurred_before: datetime | None = strawberry.field(default=None, description="Before.")


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="The audit log, newest first.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def audit_log(
        self,
        info: Info,
        filter: Annotated[
            AuditLogFilter | None, strawberry.argument(description="Which entries.")
        ] = None,
        first: FirstArg = None,
        after: AfterArg = None,
    ) -> Connection[AuditEntry]:
        query = select(AuditEntryModel.__table__)
        viewer = info.context.viewer
        if viewer is None or not viewer.has_scope(Scope.STAFF_ADMIN):
            query = query.where(AuditEntryModel.target_type.not_in(ADMIN_TARGETS))
        if filter is not None:
            if filter.target_id is not None:
                type_name, pk = parse_global_id(filter.target_id)
                query = query.where(
                    AuditEntryModel.target_type == type_name, AuditEntryModel.target_id == pk
                )
            if filter.actor_id is not None:
                query = query.where(
                    AuditEntryModel.actor_id == (pk_of(filter.actor_id, "StaffUser") or 0)
                )
            if filter.actions:
                if any(len(a) > MAX_ACTION or UNSTORABLE.search(a) for a in filter.actions):
                    raise BadUserInput(
                        f"`filter.actions` are at most {MAX_ACTION} characters, without NUL.",
                        field="filter.actions",
                    )
                query = query.where(AuditEntryModel.action.in_(filter.actions))
            low, high = filter.occurred_after, filter.occurred_before
            if low is not None and high is not None and low >= high:
                raise BadUserInput("`filter.occurredAfter` must be below `filter.occurredBefore`.")
            if low is not None:
                query = query.where(AuditEntryModel.occurred_at >= low)
            if high is not None:
                query = query.where(AuditEntryModel.occurred_at < high)
        page = page_request(NEWEST_FIRST, first=first, after=after, last=None, before=None)
        return await paginate(info.context.db, query, NEWEST_FIRST, page, AuditEntry.from_row)
