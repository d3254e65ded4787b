"""API tokens for integrations: created with a subset of the creator's scopes, revocable."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import Scope, TokenKind
from db.models import ApiToken, StaffUser
from services import audit
from services.actors import Actor
from services.auth import IssuedToken, issue_token
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied
from services.validation import column_length, text

MAX_NAME = column_length(ApiToken.name)


async def create_token(
    session: AsyncSession,
    *,
    actor: Actor,
    actor_scopes: frozenset[Scope],
    owner_id: int,
    name: str,
    scopes: frozenset[Scope],
    expires_at: datetime | None,
) -> tuple[ApiToken, IssuedToken]:
    """An API token for the actor (or, for admins with staff:admin, for another staff user);
    never with a scope the actor's own token lacks."""
    if owner_id != actor.staff_id and Scope.STAFF_ADMIN not in actor_scopes:
        raise PermissionDenied("Tokens for others need the staff:admin scope", Denial.MISSING_SCOPE)
    owner = await session.get(StaffUser, owner_id)
    if owner is None or not owner.is_active:
        raise DomainError(ErrorCode.NOT_FOUND, "No such staff user", ["staff_id"])
    cleaned = text(name, field=["name"], maximum=MAX_NAME, required=True)
    beyond = scopes - actor_scopes
    if beyond:
        listed = ", ".join(sorted(scope.value for scope in beyond))
        raise DomainError(
            ErrorCode.INVALID_SCOPE, f"Your token does not hold: {listed}", ["scopes"]
        )
    if not scopes:
        raise DomainError(ErrorCode.REQUIRED, "Give at least one scope", ["scopes"])
    if expires_at is not None and expires_at <= actor.now:
        raise DomainError(ErrorCode.INVALID, "A token expires in the future", ["expires_at"])
    issued = await issue_token(
        session,
        staff=owner,
        kind=TokenKind.API,
        name=cleaned or "",
        now=actor.now,
        scopes=scopes,
        expires_at=expires_at,
    )
    await audit.record(
        session,
        actor=actor,
        action="token.create",
        target_type="ApiToken",
        target_id=issued.token_id,
        target_label=issued.prefix,
        after={
            "owner": owner.email,
            "name": cleaned,
            "scopes": sorted(s.value for s in scopes),
            "expires_at": expires_at,
        },
    )
    await session.commit()
    row = await session.get(ApiToken, issued.token_id)
    assert row is not None
    return row, issued


async def revoke_token(
    session: AsyncSession, *, actor: Actor, actor_scopes: frozenset[Scope], token_id: int
) -> ApiToken:
    """Revoke one of the actor's tokens (or anyone's, for admins with staff:admin)."""
    token = await session.get(ApiToken, token_id)
    if token is None or (
        token.staff_id != actor.staff_id and Scope.STAFF_ADMIN not in actor_scopes
    ):
        raise DomainError(ErrorCode.NOT_FOUND, "No such token", ["id"])
    if token.revoked_at is None:
        token.revoked_at = actor.now
        await audit.record(
            session,
            actor=actor,
            action="token.revoke",
            target_type="ApiToken",
            target_id=token.id,
            target_label=token.prefix,
            before={"revoked_at": None},
            after={"revoked_at": actor.now},
        )
        await session.commit()
    return token
