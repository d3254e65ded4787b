"""The incremental sync: every client's latest change, in the order changes committed,
deletions included (tombstones), read from a cursor a partner stores between runs."""

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import select

from db.enums import Scope
from db.keyset import Ordering, SortKey
from db.models import ClientChange as ClientChangeModel
from db.queries import settled_position
from gql.clients.types import Client, client_from_row
from gql.context import Info
from gql.loaders import now_or_later
from gql.node import to_global_id
from gql.pagination import AfterArg, Connection, FirstArg, page_request, paginate
from gql.permissions import HasScope

CHANGES = ClientChangeModel.__table__
AS_COMMITTED = Ordering(
    keys=(SortKey(name="POSITION", column=CHANGES.c.position),),
    tiebreaker=CHANGES.c.client_id,
)


@strawberry.type(
    description="A client's latest change (`clientChanges`): the client as it is now, or a "
    "tombstone once it is deleted."
)
class ClientChange:
    client_id: strawberry.ID = strawberry.field(description="The client's global ID.")
    version: int = strawberry.field(
        description="The client's `version` after this change. Apply a change only if its "
        "version is above the one you hold: a client changed again while you read may come "
        "with its newer fields first and again at its newer position."
    )
    deleted: bool = strawberry.field(
        description="The client was deleted (a tombstone): remove it on your side. A restored "
        "client comes again, not deleted, with a higher version."
    )
    changed_at: datetime = strawberry.field(
        description="When it changed (for people; the order is the feed's, not this time's)."
    )
    pk: strawberry.Private[int]

    @strawberry.field(description="The client as it is now; null once it is deleted.")
    def client(self, info: Info) -> Client | None:
        if self.deleted:
            return None
        loader = info.context.loaders.client_by_id
        return now_or_later(  # type: ignore[no-any-return]
            loader, self.pk, lambda row: client_from_row(info, row) if row else None
        )


def client_change(row: Any) -> ClientChange:
    return ClientChange(
        client_id=to_global_id("Client", row.client_id),
        version=row.version,
        deleted=row.deleted,
        changed_at=row.changed_at,
        pk=row.client_id,
    )


@strawberry.type
class ClientChangeQuery:
    @strawberry.field(
        description="Every client's latest change, in the order the changes committed, "
        "deletions included — the incremental sync. Start without `after`, keep the last "
        "`pageInfo.endCursor` you were given, and go on from it next time: every change "
        "committed after the position you stored comes after it, none is skipped (a change "
        "still in flight holds the feed back until it commits or rolls back), and a client "
        "comes again only when it changed again. A client shows once, at its latest change.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def client_changes(
        self, info: Info, first: FirstArg = None, after: AfterArg = None
    ) -> Connection[ClientChange]:
        page = page_request(AS_COMMITTED, first=first, after=after, last=None, before=None)
        settled = select(CHANGES).where(CHANGES.c.position < settled_position())
        return await paginate(info.context.db, settled, AS_COMMITTED, page, client_change)
