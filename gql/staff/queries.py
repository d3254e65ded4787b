"""Queries about staff users and the viewer."""

from typing import Annotated

import strawberry

from db.models import StaffUser as StaffUserModel
from db.queries import select_staff
from gql.context import Info
from gql.enums import StaffRole
from gql.permissions import IsAuthenticated
from gql.staff.types import StaffUser, Viewer


@strawberry.type
class StaffQuery:
    @strawberry.field(
        description="The staff user whose token is in use, and what the token may do.",
        permission_classes=[IsAuthenticated],
    )
    def viewer(self, info: Info) -> Viewer:
        assert info.context.viewer is not None  # IsAuthenticated
        return Viewer.from_model(info.context.viewer)

    @strawberry.field(
        description="Staff users, by name (for the manager drop-down).",
        permission_classes=[IsAuthenticated],
    )
    async def staff_users(
        self,
        info: Info,
        role: Annotated[
            StaffRole | None, strawberry.argument(description="Only users with this role.")
        ] = None,
    ) -> list[StaffUser]:
        query = select_staff().where(StaffUserModel.is_active.is_(True))
        if role is not None:
            query = query.where(StaffUserModel.role == role)
        rows = await info.context.db.execute(query.order_by(StaffUserModel.name))
        return [StaffUser.from_row(row) for row in rows]
