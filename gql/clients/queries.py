"""Queries that read clients."""

from typing import Annotated

import strawberry

from db.enums import Scope
from gql.clients.types import Client
from gql.context import Info
from gql.errors import BadUserInput
from gql.node import pk_of
from gql.permissions import HasScope


@strawberry.type
class ClientQuery:
    @strawberry.field(
        description="One client, by global ID or by login (give exactly one); null if none.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def client(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The client's global ID.")
        ] = None,
        login: Annotated[
            str | None, strawberry.argument(description="The client's login (case-insensitive).")
        ] = None,
    ) -> Client | None:
        if (id is None) == (login is None):
            raise BadUserInput("Give exactly one of `id` and `login`.")
        loaders = info.context.loaders
        if id is not None:
            pk = pk_of(id, "Client")
            row = await loaders.client_by_id.load(pk) if pk is not None else None
        else:
            assert login is not None
            row = await loaders.client_by_login.load(login.strip().lower())
        return Client.from_row(row, info.context.now) if row is not None else None
