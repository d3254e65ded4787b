"""GraphQL types for the audit log."""

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db.queries import AnyRow
from gql.context import Info
from gql.node import Node, to_global_id
from gql.staff.types import StaffUser


@strawberry.type(
    description="One change: who made it, when, to what, and the values before and after."
)
class AuditEntry(Node):
    occurred_at: datetime = strawberry.field(description="When it happened.")
    action: str = strawberry.field(
        description="What happened, e.g. client.create, client.update, client.delete."
    )
    target_type: str = strawberry.field(description="The kind of object changed, e.g. Client.")
    target_id: strawberry.ID | None = strawberry.field(
        description="The changed object's global ID (it may no longer exist)."
    )
    target_label: str | None = strawberry.field(description="A name for it then, e.g. a login.")
    actor_email: str | None = strawberry.field(description="Who made the change, then.")
    before: JSON | None = strawberry.field(description="Values before (changed ones only).")
    after: JSON | None = strawberry.field(description="Values after (changed ones only).")
    reason: str | None = strawberry.field(description="The reason given, if any.")
    request_id: str | None = strawberry.field(description="The request that made the change.")
    actor_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: AnyRow) -> "AuditEntry":
        return cls(
            id=to_global_id("AuditEntry", row.id),
            occurred_at=row.occurred_at,
            action=row.action,
            target_type=row.target_type,
            target_id=to_global_id(row.target_type, row.target_id) if row.target_id else None,
            target_label=row.target_label,
            actor_email=row.actor_email,
            before=row.before,
            after=row.after,
            reason=row.reason,
            request_id=row.request_id,
            actor_id=row.actor_id,
        )

    @strawberry.field(description="The staff user who made the change, if they still exist.")
    async def actor(self, info: Info) -> StaffUser | None:
        if self.actor_id is None:
            return None
        row = await info.context.loaders.staff_user_by_id.load(self.actor_id)
        return StaffUser.from_row(row) if row is not None else None
