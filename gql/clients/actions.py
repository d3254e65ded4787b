"""The Actions column of the clients page: block, link sub-accounts, open the cabinet."""

from datetime import datetime, timedelta
from typing import Annotated

import strawberry

from db.enums import Scope
from gql.clients.mutations import (
    ClientPayload,
    ExpectedVersionArg,
    client_payload,
    client_pk,
    shown_pk,
)
from gql.clients.types import Client, client_from_row
from gql.context import Info
from gql.errors import UserError, attempt
from gql.permissions import HasScope
from services import blocking, cabinet, clients, linking

IdArg = Annotated[strawberry.ID, strawberry.argument(description="The client's global ID.")]
WRITE = [HasScope(Scope.CLIENTS_WRITE)]


@strawberry.type(description="The result of linking or unlinking a sub-account.")
class ClientLinkPayload:
    parent: Client | None = strawberry.field(
        description="The parent (for clientUnlink: the former parent) as it is now.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    child: Client | None = strawberry.field(
        description="The sub-account as it is now.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="The result of `clientCabinetSessionsRevoke`.")
class ClientCabinetSessionsRevokePayload:
    revoked_count: int | None = strawberry.field(
        description="How many of the client's cabinet sessions were open and are now revoked."
    )
    client: Client | None = strawberry.field(
        description="The client.", permission_classes=[HasScope(Scope.CLIENTS_READ)]
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="A way into the client's own cabinet, for a short while.")
class ClientImpersonatePayload:
    token: str | None = strawberry.field(
        description="Signed token scoped to this one client; the cabinet checks it at "
        "GET /cabinet/session (Authorization: Bearer …)."
    )
    expires_at: datetime | None = strawberry.field(description="When the token stops working.")
    cabinet_url: str | None = strawberry.field(
        description="Opens the cabinet with the token (in the URL fragment, never sent to servers)."
    )
    client: Client | None = strawberry.field(
        description="The client.", permission_classes=[HasScope(Scope.CLIENTS_READ)]
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


async def link_payload(
    info: Info, parent_id: int | None, child_id: int | None, errors: list[UserError]
) -> ClientLinkPayload:
    loaders = info.context.loaders
    parent = await loaders.client_by_id.load(parent_id) if parent_id else None
    child = await loaders.client_by_id.load(child_id) if child_id else None
    return ClientLinkPayload(
        parent=client_from_row(info, parent) if parent else None,
        child=client_from_row(info, child) if child else None,
        user_errors=errors,
    )


@strawberry.type
class ClientActionMutation:
    @strawberry.mutation(
        description="Block a client: a temporary restriction, separate from the status, until "
        "`until` or until unblocked. Blocking a blocked client replaces reason and end.",
        permission_classes=WRITE,
    )
    async def client_block(
        self,
        info: Info,
        id: IdArg,
        reason: Annotated[str, strawberry.argument(description="Why (1-500 characters).")],
        until: Annotated[
            datetime | None,
            strawberry.argument(description="When the block ends by itself (in the future)."),
        ] = None,
        expected_version: ExpectedVersionArg = None,
    ) -> ClientPayload:
        pk = client_pk(id)
        client, errors = await attempt(
            info,
            blocking.block,
            prefix=(),
            client_id=pk,
            reason=reason,
            until=until,
            expected_version=expected_version,
        )
        return await client_payload(info, shown_pk(client, pk, errors), errors)

    @strawberry.mutation(
        description="Send a client their login and a new link to set their password (the "
        "links sent before stop working), through the outbox; `Client.loginDetails` then "
        "shows whether it went out. Refused for a client without an e-mail address "
        "(CONTACT_REQUIRED) and within a minute of the last login e-mail to the same client "
        "(TOO_MANY_ATTEMPTS). Audited.",
        permission_classes=WRITE,
    )
    async def client_login_details_send(self, info: Info, id: IdArg) -> ClientPayload:
        settings = info.context.settings
        client, errors = await attempt(
            info,
            clients.resend_login_details,
            prefix=(),
            client_id=client_pk(id),
            cabinet_base_url=settings.cabinet_base_url,
            link_valid_for=timedelta(hours=settings.set_password_link_hours),
        )
        return await client_payload(info, client.id if client else None, errors)

    @strawberry.mutation(description="Lift a client's block.", permission_classes=WRITE)
    async def client_unblock(
        self, info: Info, id: IdArg, expected_version: ExpectedVersionArg = None
    ) -> ClientPayload:
        pk = client_pk(id)
        client, errors = await attempt(
            info, blocking.unblock, prefix=(), client_id=pk, expected_version=expected_version
        )
        return await client_payload(info, shown_pk(client, pk, errors), errors)

    @strawberry.mutation(
        description="Make a client a sub-account of another: one level deep, same currency, "
        "no loops, one parent at a time.",
        permission_classes=WRITE,
    )
    async def client_link(
        self,
        info: Info,
        parent_id: Annotated[strawberry.ID, strawberry.argument(description="The parent.")],
        child_id: Annotated[strawberry.ID, strawberry.argument(description="The sub-account.")],
        expected_version: ExpectedVersionArg = None,
    ) -> ClientLinkPayload:
        parent, child = client_pk(parent_id), client_pk(child_id)
        linked, errors = await attempt(
            info,
            linking.link,
            prefix=(),
            parent_id=parent,
            child_id=child,
            expected_version=expected_version,
        )
        return await link_payload(
            info, parent if linked else None, shown_pk(linked, child, errors), errors
        )

    @strawberry.mutation(
        description="Make a sub-account a top-level client again.", permission_classes=WRITE
    )
    async def client_unlink(
        self,
        info: Info,
        child_id: Annotated[strawberry.ID, strawberry.argument(description="The sub-account.")],
        expected_version: ExpectedVersionArg = None,
    ) -> ClientLinkPayload:
        pk = client_pk(child_id)
        result, errors = await attempt(
            info, linking.unlink, prefix=(), child_id=pk, expected_version=expected_version
        )
        if result is None:
            return await link_payload(info, None, shown_pk(None, pk, errors), errors)
        child, parent_id = result
        return await link_payload(info, parent_id, child.id, errors)

    @strawberry.mutation(
        description='"In cabinet": a short-lived token that opens this client\'s own interface '
        "(audited with the reason). Refused for a blocked or inactive client unless an admin "
        "passes `force: true`. The cabinet checks its session again on every use: it ends when "
        "it is revoked or expires, when the client is blocked, set inactive or deleted (unless "
        "an admin forced it open), when its issuer may no longer change the client or is "
        "deactivated, or when the staff token it was opened with is revoked or expires.",
        permission_classes=[HasScope(Scope.CLIENTS_IMPERSONATE)],
    )
    async def client_impersonate(
        self,
        info: Info,
        id: IdArg,
        reason: Annotated[str, strawberry.argument(description="Why (kept in the audit log).")],
        force: Annotated[
            bool,
            strawberry.argument(description="Admins: open it even if the client cannot sign in."),
        ] = False,
    ) -> ClientImpersonatePayload:
        settings, viewer = info.context.settings, info.context.viewer
        assert viewer is not None  # HasScope
        issued, errors = await attempt(
            info,
            cabinet.impersonate,
            prefix=(),
            token_id=viewer.token_id,
            client_id=client_pk(id),
            reason=reason,
            force=force,
            secret=settings.signing_key,
            lifetime=timedelta(minutes=settings.impersonation_minutes),
            cabinet_base_url=settings.cabinet_base_url,
        )
        if issued is None:
            return ClientImpersonatePayload(
                token=None, expires_at=None, cabinet_url=None, client=None, user_errors=errors
            )
        row = await info.context.loaders.client_by_id.load(issued.client.id)
        return ClientImpersonatePayload(
            token=issued.token,
            expires_at=issued.expires_at,
            cabinet_url=issued.url,
            client=client_from_row(info, row) if row else None,
            user_errors=[],
        )

    @strawberry.mutation(
        description="End every open cabinet session of a client (from `clientImpersonate`, "
        "by anyone): their tokens stop working at once. Audited with the reason.",
        permission_classes=[HasScope(Scope.CLIENTS_IMPERSONATE)],
    )
    async def client_cabinet_sessions_revoke(
        self,
        info: Info,
        client_id: Annotated[
            strawberry.ID, strawberry.argument(description="The client's global ID.")
        ],
        reason: Annotated[
            str | None,
            strawberry.argument(description="Why (kept in the audit log; at most 500 characters)."),
        ] = None,
    ) -> ClientCabinetSessionsRevokePayload:
        revoked, errors = await attempt(
            info,
            cabinet.revoke_sessions,
            prefix=(),
            paths={"id": ["clientId"]},
            client_id=client_pk(client_id),
            reason=reason,
        )
        if revoked is None:
            return ClientCabinetSessionsRevokePayload(
                revoked_count=None, client=None, user_errors=errors
            )
        client, count = revoked
        row = await info.context.loaders.client_by_id.load(client.id)
        return ClientCabinetSessionsRevokePayload(
            revoked_count=count,
            client=client_from_row(info, row) if row else None,
            user_errors=[],
        )
