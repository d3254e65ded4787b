"""Signing in."""

from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry

from gql.context import Info
from gql.errors import UserError, user_errors
from gql.staff.types import Viewer
from services import auth
from services.errors import DomainError, ErrorCode
from services.ratelimit import Rate


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


LOGIN_WINDOW = timedelta(minutes=15)


async def login_throttle(context: Any, email: str) -> float | None:
    """Count a sign-in attempt against the account and the caller's address (every alias
    counts); the seconds to wait when either has had too many, else None."""
    settings = context.settings
    buckets = (
        (f"login:account:{email.strip().lower()}", settings.login_attempts_per_account),
        (f"login:address:{context.client_address}", settings.login_attempts_per_address),
    )
    waits = []
    for key, attempts in buckets:
        decision = await context.rate_limiter.take(
            key, 1, Rate(attempts, LOGIN_WINDOW), context.now
        )
        if not decision.allowed:
            waits.append(decision.retry_after)
    return max(waits) if waits else None


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
        waiting = await login_throttle(context, email)
        if waiting is not None:
            return StaffLoginPayload(
                token=None,
                expires_at=None,
                viewer=None,
                user_errors=[
                    UserError(
                        field=None,
                        code=ErrorCode.TOO_MANY_ATTEMPTS,
                        message=f"Too many sign-in attempts; try again in {waiting:.0f} s.",
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
