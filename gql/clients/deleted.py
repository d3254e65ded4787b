"""Deleted clients in the API: listed for admins until they are purged, and restored."""

from datetime import datetime, timedelta
from typing import Any

import strawberry
from sqlalchemy import select

from db.enums import Scope
from db.keyset import Ordering, SortKey
from db.models import DeletedClient as DeletedClientModel
from gql.clients.mutations import IdsArg, client_pk
from gql.clients.types import Client, client_from_row
from gql.context import Info
from gql.errors import UserError, attempt
from gql.loaders import now_or_later
from gql.node import to_global_id
from gql.pagination import AfterArg, Connection, FirstArg, page_request, paginate
from gql.permissions import AdminsOnly, HasScope
from gql.staff.types import StaffUser
from services import deletion

DELETED = DeletedClientModel.__table__
NEWEST_FIRST = Ordering(
    keys=(SortKey(name="DELETED_AT", column=DELETED.c.deleted_at, descending=True),),
    tiebreaker=DELETED.c.id,
)


@strawberry.type(
    description="A deleted client, kept until it is purged (`purgeAt`): restorable with "
    "`clientsRestore`, its login reserved meanwhile."
)
class DeletedClient:
    id: strawberry.ID = strawberry.field(
        description="The client's global ID, as it was (and will be again once restored)."
    )
    login: str = strawberry.field(description="The login, reserved until the purge.")
    name: str | None = strawberry.field(description="The name when deleted.")
    email: str | None = strawberry.field(description="The e-mail address when deleted.")
    currency: str = strawberry.field(description="The client's currency.")
    deleted_at: datetime = strawberry.field(description="When it was deleted.")
    purge_at: datetime = strawberry.field(
        description="When it is purged for good (CLIENTDESK_DELETED_RETENTION_DAYS after the "
        "deletion): then it cannot be restored, and its login is free."
    )
    deleted_by_id: strawberry.Private[int | None]

    @strawberry.field(description="Who deleted it; null if that staff user was removed.")
    def deleted_by(self, info: Info) -> StaffUser | None:
        if self.deleted_by_id is None:
            return None
        loader = info.context.loaders.staff_user_by_id
        return now_or_later(loader, self.deleted_by_id, StaffUser.from_optional_row)  # type: ignore[no-any-return]


def deleted_client(row: Any, retention: timedelta) -> DeletedClient:
    snapshot = row.snapshot or {}
    return DeletedClient(
        id=to_global_id("Client", row.id),
        login=row.login,
        name=snapshot.get("name"),
        email=snapshot.get("email"),
        currency=snapshot.get("currency", ""),
        deleted_at=row.deleted_at,
        purge_at=deletion.purge_at(row.deleted_at, retention),
        deleted_by_id=row.deleted_by_id,
    )


@strawberry.type(description="The result of `clientsRestore`.")
class ClientsRestorePayload:
    clients: list[Client] = strawberry.field(
        description="The restored clients as they are now; empty if refused.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why it was refused (`field` points at the id); then nothing was restored."
    )


@strawberry.type
class DeletedClientQuery:
    @strawberry.field(
        description="Deleted clients not yet purged, most recently deleted first (admins).",
        permission_classes=[HasScope(Scope.CLIENTS_READ), AdminsOnly],
    )
    async def deleted_clients(
        self, info: Info, first: FirstArg = None, after: AfterArg = None
    ) -> Connection[DeletedClient]:
        retention = timedelta(days=info.context.settings.deleted_retention_days)
        page = page_request(NEWEST_FIRST, first=first, after=after, last=None, before=None)
        return await paginate(
            info.context.db,
            select(DELETED),
            NEWEST_FIRST,
            page,
            lambda row: deleted_client(row, retention),
        )


@strawberry.type
class DeletedClientMutation:
    @strawberry.mutation(
        description="Bring deleted clients back whole, under their IDs, until they are purged: "
        "their fields, password, access lists, custom values (of fields still defined), "
        "connections and the link to a parent that exists (restored in the same call, or "
        "never deleted); the balance is their ledger's sum. Admins restore any; a manager "
        "those that were theirs. All or nothing: NOT_FOUND for an ID that is not a deleted "
        "client, LOGIN_TAKEN if another client has the login now. Audited (`client.restore`).",
        permission_classes=[HasScope(Scope.CLIENTS_DELETE)],
    )
    async def clients_restore(self, info: Info, ids: IdsArg) -> ClientsRestorePayload:
        restored, errors = await attempt(
            info, deletion.restore_clients, prefix=(), ids=[client_pk(i) for i in ids]
        )
        loader = info.context.loaders.client_by_id
        rows = await loader.load_many(restored or [])
        return ClientsRestorePayload(
            clients=[client_from_row(info, row) for row in rows if row is not None],
            user_errors=errors,
        )
