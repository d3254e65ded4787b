"""Signing in."""

from datetime import datetime, timedelta
from typing import Annotated

import strawberry

from clientdesk import metrics
from gql.context import Info
from gql.enums import Scope
from gql.errors import UserError, attempt, user_errors
from gql.node import pk_of
from gql.permissions import HasScope, IsAuthenticated
from gql.staff.types import ApiToken, Viewer
from services import auth, tokens
from services.errors import DomainError, ErrorCode
from services.signin_limits import LoginLimits, take_login_attempt


@strawberry.type(description="The result of `staffLogin`.")
class StaffLoginPayload:
    token: str | None = strawberry.field(
        description="Bearer token for the `Authorization` header; shown only this once."
    )
    expires_at: datetime | None = strawberry.field(description="When the token stops working.")
    viewer: Viewer | None = strawberry.field(description="Who signed in.")
    user_errors: list[UserError] = strawberry.field(
        description="Why signing in failed; empty on success."
    )


@strawberry.type
class StaffMutation:
    @strawberry.mutation(
        description="Sign in with e-mail and password; returns a session token with every "
        "scope of the user's role. The only operation that needs no token."
    )
    async def staff_login(
        self,
        info: Info,
        email: Annotated[str, strawberry.argument(description="Staff e-mail address.")],
        password: Annotated[str, strawberry.argument(description="Staff password.")],
    ) -> StaffLoginPayload:
        context = info.context
        ttl = timedelta(hours=context.settings.session_token_ttl_hours)
        waiting = await take_login_attempt(
            context.rate_limiter,
            email=email,
            address=context.client_address,
            limits=LoginLimits(
                per_address_account=context.settings.login_attempts_per_address_account,
                per_address=context.settings.login_attempts_per_address,
                per_account=context.settings.login_attempts_per_account,
            ),
            now=context.now,
        )
        if waiting is not None:
            metrics.RATE_LIMIT_REFUSALS.labels("login").inc()
            return StaffLoginPayload(
                token=None,
                expires_at=None,
                viewer=None,
                user_errors=[
                    UserError(
                        field=None,
                        code=ErrorCode.TOO_MANY_ATTEMPTS,
                        message=f"Too many sign-in attempts; try again in {waiting} s.",
                    )
                ],
            )
        try:
            async with context.db.exclusive() as session:
                staff, issued = await auth.login(
                    session, email=email, password=password, now=context.now, ttl=ttl
                )
        except DomainError as error:
            return StaffLoginPayload(
                token=None, expires_at=None, viewer=None, user_errors=user_errors(error, prefix=())
            )
        viewer = auth.Viewer(
            staff_id=staff.id,
            email=staff.email,
            name=staff.name,
            role=staff.role,
            scopes=issued.scopes,
            token_id=issued.token_id,
            token_expires_at=issued.expires_at,
        )
        return StaffLoginPayload(
            token=issued.token,
            expires_at=issued.expires_at,
            viewer=Viewer.from_model(viewer),
            user_errors=[],
        )


@strawberry.input(description="A new API token for an integration.")
class TokenCreateInput:
    name: str = strawberry.field(description='What it is for, e.g. "billing sync".')
    scopes: list[Scope] = strawberry.field(
        description="What it may do: a subset of the scopes of the token in use."
    )
    expires_at: datetime | None = strawberry.field(
        default=None,
        description="When it stops working: no later than the token in use does "
        "(default: when the token in use does; never if it never does).",
    )
    staff_id: strawberry.ID | None = strawberry.field(
        default=None, description="Admins (staff:admin): create it for another staff user."
    )
    trusted_documents_only: bool | None = strawberry.field(
        default=None,
        description="It may send only registered documents (`documentId`), never a query "
        "of its own: for partner integrations (default: as the token in use; a token that "
        "sends trusted documents only creates no token that does not).",
    )


@strawberry.type(description="The result of `tokenCreate`.")
class TokenCreatePayload:
    token: str | None = strawberry.field(
        description="The secret, for `Authorization: Bearer`: shown only this once."
    )
    api_token: ApiToken | None = strawberry.field(description="The token's details.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="The result of `tokenRevoke`.")
class TokenRevokePayload:
    api_token: ApiToken | None = strawberry.field(description="The revoked token.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type
class TokenMutation:
    @strawberry.mutation(
        description="Create an API token (256 random bits, stored as SHA-256), never stronger "
        "than the token in use: a subset of its scopes, expiring no later, revoked with it.",
        permission_classes=[HasScope(Scope.TOKENS_WRITE)],
    )
    async def token_create(
        self,
        info: Info,
        input: Annotated[TokenCreateInput, strawberry.argument(description="The token.")],
    ) -> TokenCreatePayload:
        viewer = info.context.viewer
        assert viewer is not None  # IsAuthenticated
        owner = (
            viewer.staff_id if input.staff_id is None else pk_of(input.staff_id, "StaffUser") or 0
        )
        created, errors = await attempt(
            info,
            tokens.create_token,
            actor_scopes=viewer.scopes,
            actor_token_id=viewer.token_id,
            owner_id=owner,
            name=input.name,
            scopes=frozenset(input.scopes),
            expires_at=input.expires_at,
            trusted_documents_only=input.trusted_documents_only,
        )
        if created is None:
            return TokenCreatePayload(token=None, api_token=None, user_errors=errors)
        row, issued = created
        return TokenCreatePayload(
            token=issued.token, api_token=ApiToken.from_row(row), user_errors=[]
        )

    @strawberry.mutation(
        description="Revoke an API token and the tokens it created: they stop working at once. "
        "Any token may revoke itself and the tokens it created; the owner's others need "
        "`tokens:write`, other staff users' `staff:admin`.",
        permission_classes=[IsAuthenticated],
    )
    async def token_revoke(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The token's global ID.")],
    ) -> TokenRevokePayload:
        viewer = info.context.viewer
        assert viewer is not None  # IsAuthenticated
        revoked, errors = await attempt(
            info,
            tokens.revoke_token,
            prefix=(),
            actor_scopes=viewer.scopes,
            actor_token_id=viewer.token_id,
            token_id=pk_of(id, "ApiToken") or 0,
        )
        if revoked:  # this process stops trusting it now; the others within the cache's time
            info.context.request.app.state.token_cache.clear()
        return TokenRevokePayload(
            api_token=ApiToken.from_row(revoked) if revoked else None, user_errors=errors
        )
