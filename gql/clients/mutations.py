"""Mutations on client accounts: create, update, password, avatar, bulk status and delete."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

import strawberry

from db.enums import Scope
from gql.clients.inputs import (
    NO_ROW,
    ClientCreateInput,
    ClientUpdateInput,
    field_scopes,
)
from gql.clients.types import Client, client_from_row
from gql.context import Info
from gql.enums import ClientStatus
from gql.errors import UserError, attempt
from gql.node import pk_of, to_global_id
from gql.permissions import FieldScopes, HasScope
from services import clients
from services.errors import ErrorCode
from services.passwords import MAX_LENGTH, MIN_LENGTH, SCORED_LENGTH

IdArg = Annotated[strawberry.ID, strawberry.argument(description="The client's global ID.")]
IdsArg = Annotated[
    list[strawberry.ID],
    strawberry.argument(
        description=f"Global IDs of the selected clients (at most {clients.MAX_BULK})."
    ),
]


@strawberry.type(description="The result of a mutation on one client.")
class ClientPayload:
    client: Client | None = strawberry.field(
        description="The client as it is now; null if the mutation was refused.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why the mutation was refused; empty on success."
    )


@strawberry.type(description="The result of `clientsSetStatus`.")
class ClientsSetStatusPayload:
    clients: list[Client] | None = strawberry.field(
        description="The selected clients as they are now; empty if refused.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why it was refused (`field` points at the id); then nothing changed."
    )


@strawberry.type(description="The result of `clientsDelete`.")
class ClientsDeletePayload:
    deleted_ids: list[strawberry.ID] = strawberry.field(
        description="Global IDs of the deleted clients; empty if refused."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why it was refused (`field` points at the id); then nothing was deleted."
    )


ExpectedVersionArg = Annotated[
    int | None,
    strawberry.argument(
        description="The client's `version` as you last read it: if someone changed the client "
        "since, nothing is changed and the payload answers STALE_VERSION with the client as it "
        "is now. Left out, the change applies whatever the version (last write wins)."
    ),
]


def shown_pk(changed: Any, pk: int, errors: Sequence[UserError]) -> int | None:
    """The client a payload shows: the changed one, or, refused as STALE_VERSION, the client
    as it is now (its current version included); none for other refusals."""
    if changed is not None:
        return int(changed.id)
    return pk if any(error.code is ErrorCode.STALE_VERSION for error in errors) else None


def client_pk(value: strawberry.ID) -> int:
    """The primary key of a client's ID; another type's ID finds nothing."""
    return pk_of(value, "Client") or NO_ROW


async def client_payload(info: Info, pk: int | None, errors: list[UserError]) -> ClientPayload:
    if pk is None:
        return ClientPayload(client=None, user_errors=errors)
    row = await info.context.loaders.client_by_id.load(pk)
    return ClientPayload(client=client_from_row(info, row) if row else None, user_errors=errors)


WRITE = [HasScope(Scope.CLIENTS_WRITE)]
# clientCreate and clientUpdate: the write scope, and each field's own (CLIENT_FIELD_SCOPES)
CREATE = [*WRITE, FieldScopes("input", field_scopes(ClientCreateInput))]
UPDATE = [*WRITE, FieldScopes("input", field_scopes(ClientUpdateInput))]


@strawberry.type
class ClientMutation:
    @strawberry.mutation(
        description="Open a client account. Required: login, password, currency and an e-mail "
        "or phone. With `sendLoginDetails` the client gets an e-mail with their login and a "
        "one-time link to set their own password.",
        permission_classes=CREATE,
    )
    async def client_create(
        self,
        info: Info,
        input: Annotated[ClientCreateInput, strawberry.argument(description="The new account.")],
    ) -> ClientPayload:
        settings = info.context.settings
        # scored and hashed first: the write that follows holds locks, this holds none
        password = await clients.prepare_password(
            input.password,
            user_inputs=[input.login.lower(), input.name or "", input.email or ""],
            min_score=settings.password_min_score,
        )
        client, errors = await attempt(
            info,
            clients.create_client,
            values=input.values(),
            password=password,
            cabinet_base_url=settings.cabinet_base_url,
            link_valid_for=timedelta(hours=settings.set_password_link_hours),
        )
        return await client_payload(info, client.id if client else None, errors)

    @strawberry.mutation(
        description="Change a client's details; fields left out of `input` stay as they are.",
        permission_classes=UPDATE,
    )
    async def client_update(
        self,
        info: Info,
        id: IdArg,
        input: Annotated[ClientUpdateInput, strawberry.argument(description="The changes.")],
        expected_version: ExpectedVersionArg = None,
    ) -> ClientPayload:
        pk = client_pk(id)
        client, errors = await attempt(
            info,
            clients.update_client,
            paths={"id": ("id",), "expectedVersion": ("expectedVersion",)},
            client_id=pk,
            values=input.values(),
            expected_version=expected_version,
        )
        return await client_payload(info, shown_pk(client, pk, errors), errors)

    @strawberry.mutation(
        description=f"Set a new password for the client ({MIN_LENGTH} to {MAX_LENGTH} "
        f"characters, hard to guess: the first {SCORED_LENGTH} are scored, see "
        "`passwordStrength`).",
        permission_classes=WRITE,
    )
    async def client_password_change(
        self,
        info: Info,
        id: IdArg,
        password: Annotated[str, strawberry.argument(description="The new password.")],
    ) -> ClientPayload:
        # scored and hashed before the write (which holds locks); the client's words, read
        # without a lock, count as guessable
        row = await info.context.loaders.client_by_id.load(client_pk(id))
        checked = await clients.prepare_password(
            password,
            user_inputs=[row.login, row.name or "", row.email or ""] if row else [],
            min_score=info.context.settings.password_min_score,
        )
        client, errors = await attempt(
            info,
            clients.change_password,
            prefix=(),
            client_id=client_pk(id),
            password=checked,
        )
        return await client_payload(info, client.id if client else None, errors)

    @strawberry.mutation(description="Go back to the default avatar.", permission_classes=WRITE)
    async def client_avatar_reset(self, info: Info, id: IdArg) -> ClientPayload:
        client, errors = await attempt(
            info, clients.reset_avatar, prefix=(), client_id=client_pk(id)
        )
        return await client_payload(info, client.id if client else None, errors)

    @strawberry.mutation(
        description="Enable (ACTIVE) or disable (INACTIVE) access for the selected clients: "
        "all of them, or none if any of them cannot be changed.",
        permission_classes=WRITE,
    )
    async def clients_set_status(
        self,
        info: Info,
        ids: IdsArg,
        status: Annotated[ClientStatus, strawberry.argument(description="The new status.")],
    ) -> ClientsSetStatusPayload:
        changed, errors = await attempt(
            info, clients.set_status, prefix=(), ids=[client_pk(i) for i in ids], status=status
        )
        rows = await info.context.loaders.client_by_id.load_many([c.id for c in changed or []])
        return ClientsSetStatusPayload(
            clients=[client_from_row(info, row) for row in rows if row is not None],
            user_errors=errors,
        )

    @strawberry.mutation(
        description="Delete the selected clients: they leave every list, search, count and "
        "facet, cannot sign in, and their logins stay reserved; `clientsRestore` brings them "
        "back until they are purged (CLIENTDESK_DELETED_RETENTION_DAYS, `deletedClients`). "
        "Their ids are never given to another client; their ledger entries are kept. Refused, "
        "naming each, while a client has a non-zero balance or sub-accounts; then none is "
        "deleted. Each deletion keeps a full snapshot in the audit log.",
        permission_classes=[HasScope(Scope.CLIENTS_DELETE)],
    )
    async def clients_delete(
        self,
        info: Info,
        ids: IdsArg,
        confirm: Annotated[
            bool,
            strawberry.argument(
                description="Must be true: the clients leave every list at once (restorable "
                "until purged)."
            ),
        ],
    ) -> ClientsDeletePayload:
        deleted, errors = await attempt(
            info,
            clients.delete_clients,
            prefix=(),
            ids=[client_pk(i) for i in ids],
            confirm=confirm,
        )
        return ClientsDeletePayload(
            deleted_ids=[to_global_id("Client", pk) for pk in deleted or []], user_errors=errors
        )
