"""GraphQL types for staff users and the viewer."""

from collections.abc import Sequence
from datetime import datetime

import strawberry

from db.queries import AnyRow
from gql.context import Info
from gql.enums import Scope, StaffRole
from gql.node import Node, register_node, to_global_id
from services.auth import Viewer as ViewerModel


@strawberry.type(description="A person who works in the back office: an admin or a manager.")
class StaffUser(Node):
    email: str = strawberry.field(description="Sign-in e-mail address, lower case.")
    name: str = strawberry.field(description="Full name, as shown in the admin UI.")
    role: StaffRole = strawberry.field(description="What the user may do.")
    created_at: datetime = strawberry.field(description="When the user was added.")

    @classmethod
    def from_row(cls, row: AnyRow) -> "StaffUser":
        return cls(
            id=to_global_id("StaffUser", row.id),
            email=row.email,
            name=row.name,
            role=row.role,
            created_at=row.created_at,
        )


async def fetch_staff_users(info: Info, ids: Sequence[int]) -> list[StaffUser | None]:
    """Staff users by primary key; every authenticated viewer may see them."""
    rows = await info.context.loaders.staff_user_by_id.load_many(list(ids))
    return [StaffUser.from_row(row) if row is not None else None for row in rows]


register_node("StaffUser", fetch_staff_users)


@strawberry.type(description="Who is calling: the staff user behind the token, and its scopes.")
class Viewer:
    id: strawberry.ID = strawberry.field(description="The staff user's global ID.")
    email: str = strawberry.field(description="The staff user's e-mail address.")
    name: str = strawberry.field(description="The staff user's name.")
    role: StaffRole = strawberry.field(description="The staff user's role.")
    scopes: list[Scope] = strawberry.field(description="What the token in use may do (sorted).")
    token_expires_at: datetime | None = strawberry.field(
        description="When the token in use stops working; null if it does not expire."
    )

    @classmethod
    def from_model(cls, viewer: ViewerModel) -> "Viewer":
        return cls(
            id=to_global_id("StaffUser", viewer.staff_id),
            email=viewer.email,
            name=viewer.name,
            role=viewer.role,
            scopes=sorted(viewer.scopes, key=lambda scope: scope.value),
            token_expires_at=viewer.token_expires_at,
        )
