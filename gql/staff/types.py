"""GraphQL types for staff users and the viewer."""

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

import strawberry
from sqlalchemy import select

from db.models import ApiToken as ApiTokenModel
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
        # the same row gives the same (never changed) object: a thousand managers in a
        # filter panel are built once per process, not once per request
        return _staff_user(row.id, row.email, row.name, row.role, row.created_at)

    @classmethod
    def from_optional_row(cls, row: AnyRow | None) -> "StaffUser | None":
        return cls.from_row(row) if row is not None else None


@lru_cache(maxsize=4096)
def _staff_user(pk: int, email: str, name: str, role: StaffRole, created_at: datetime) -> StaffUser:
    return StaffUser(
        id=to_global_id("StaffUser", pk), email=email, name=name, role=role, created_at=created_at
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


@strawberry.type(description="An API token (its secret is shown only when it is created).")
class ApiToken(Node):
    name: str = strawberry.field(description="What it is for.")
    prefix: str = strawberry.field(description="Its first characters, to recognise it.")
    scopes: list[Scope] = strawberry.field(description="What it may do.")
    created_at: datetime = strawberry.field(description="When it was created.")
    expires_at: datetime | None = strawberry.field(description="When it stops working, if ever.")
    last_used_at: datetime | None = strawberry.field(
        description="When it was last used (to the minute)."
    )
    revoked_at: datetime | None = strawberry.field(description="When it was revoked, if it was.")
    trusted_documents_only: bool = strawberry.field(
        description="It sends only registered documents (`documentId`), never a query of its own."
    )
    staff_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: AnyRow | ApiTokenModel) -> "ApiToken":
        return cls(
            id=to_global_id("ApiToken", row.id),
            name=row.name,
            prefix=row.prefix,
            scopes=sorted((Scope(value) for value in row.scopes), key=lambda s: s.value),
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            trusted_documents_only=row.trusted_documents_only,
            staff_id=row.staff_id,
        )

    @strawberry.field(description="Whose token it is.")
    async def owner(self, info: Info) -> StaffUser | None:
        row = await info.context.loaders.staff_user_by_id.load(self.staff_id)
        return StaffUser.from_row(row) if row is not None else None


async def fetch_api_tokens(info: Info, ids: Sequence[int]) -> list[ApiToken | None]:
    """Tokens by primary key: the viewer's own, or anyone's with staff:admin."""
    viewer = info.context.viewer
    if viewer is None:
        return [None] * len(ids)
    rows = {
        row.id: row
        for row in await info.context.db.rows(
            select(ApiTokenModel.__table__).where(ApiTokenModel.id.in_(ids))
        )
    }
    visible = [
        row
        if row is not None
        and (row.staff_id == viewer.staff_id or viewer.has_scope(Scope.STAFF_ADMIN))
        else None
        for row in (rows.get(pk) for pk in ids)
    ]
    return [ApiToken.from_row(row) if row is not None else None for row in visible]


register_node("ApiToken", fetch_api_tokens)
