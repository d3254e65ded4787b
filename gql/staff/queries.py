"""Queries about staff users and the viewer."""

from typing import Annotated

import strawberry
from sqlalchemy import select

from db.enums import Scope, TokenKind
from db.models import ApiToken as ApiTokenModel
from db.models import StaffUser as StaffUserModel
from db.queries import select_staff
from gql.context import Info
from gql.enums import StaffRole
from gql.errors import Forbidden
from gql.node import pk_of
from gql.permissions import HasScope, IsAuthenticated
from gql.staff.types import ApiToken, StaffUser, Viewer
from services.errors import Denial


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
        rows = await info.context.db.rows(query.order_by(StaffUserModel.name))
        return [StaffUser.from_row(row) for row in rows]

    @strawberry.field(
        description="API tokens: the viewer's own, or (with staff:admin) another staff user's.",
        permission_classes=[HasScope(Scope.TOKENS_WRITE)],
    )
    async def api_tokens(
        self,
        info: Info,
        staff_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Whose tokens (default: the viewer's)."),
        ] = None,
    ) -> list[ApiToken]:
        viewer = info.context.viewer
        assert viewer is not None  # IsAuthenticated
        owner = viewer.staff_id if staff_id is None else pk_of(staff_id, "StaffUser") or 0
        if owner != viewer.staff_id and not viewer.has_scope(Scope.STAFF_ADMIN):
            raise Forbidden(
                "Other staff users' tokens need the `staff:admin` scope.",
                Denial.MISSING_SCOPE,
                scope="staff:admin",
            )
        rows = await info.context.db.rows(
            select(ApiTokenModel.__table__)
            .where(ApiTokenModel.staff_id == owner, ApiTokenModel.kind == TokenKind.API)
            .order_by(ApiTokenModel.id)
        )
        return [ApiToken.from_row(row) for row in rows]
