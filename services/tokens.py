"""API tokens for integrations: minted by a token and never stronger than it (scopes, expiry,
life, trusted documents only), revocable with everything they minted."""

from datetime import datetime

from sqlalchemy import select, update
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
    actor_token_id: int,
    owner_id: int,
    name: str,
    scopes: frozenset[Scope],
    expires_at: datetime | None,
    trusted_documents_only: bool | None = None,
) -> tuple[ApiToken, IssuedToken]:
    """An API token for the actor (or, for admins with staff:admin, for another staff user),
    minted by the actor's token: never with a scope it lacks, a later expiry (none given: the
    minting token's) nor free queries when it sends trusted documents only (none given: as it
    does), and revoked with it."""
    if owner_id != actor.staff_id and Scope.STAFF_ADMIN not in actor_scopes:
        raise PermissionDenied("Tokens for others need the staff:admin scope", Denial.MISSING_SCOPE)
    # locked: a revocation of the minting token either comes first (and this is refused) or
    # waits for this one, and then finds the new token among those to revoke
    minter = (
        await session.execute(
            select(ApiToken).where(ApiToken.id == actor_token_id).with_for_update()
        )
    ).scalar_one_or_none()
    if minter is None or minter.revoked_at is not None:
        raise DomainError(ErrorCode.NOT_ALLOWED, "The token in use was revoked meanwhile")
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
    if minter.expires_at is not None:
        if expires_at is None:
            expires_at = minter.expires_at  # no longer than the token that mints it
        elif expires_at > minter.expires_at:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE,
                f"The token in use expires at {minter.expires_at.isoformat()}; "
                "a token it creates expires no later",
                ["expires_at"],
            )
    if trusted_documents_only is None:
        trusted_documents_only = minter.trusted_documents_only
    elif minter.trusted_documents_only and not trusted_documents_only:
        raise DomainError(
            ErrorCode.NOT_ALLOWED,
            "The token in use sends trusted documents only; so do the tokens it creates",
            ["trusted_documents_only"],
        )
    issued = await issue_token(
        session,
        staff=owner,
        kind=TokenKind.API,
        name=cleaned or "",
        now=actor.now,
        scopes=scopes,
        expires_at=expires_at,
        parent_id=minter.id,
        trusted_documents_only=trusted_documents_only,
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
            "minted_by": minter.prefix,
            "trusted_documents_only": trusted_documents_only,
        },
    )
    await session.commit()
    row = await session.get(ApiToken, issued.token_id)
    assert row is not None
    return row, issued


async def _descends_from(session: AsyncSession, token: ApiToken, ancestor_id: int) -> bool:
    """Whether `token` is the token `ancestor_id` or was minted by it, at any remove."""
    current: int | None = token.id
    while current is not None:
        if current == ancestor_id:
            return True
        current = await session.scalar(select(ApiToken.parent_id).where(ApiToken.id == current))
    return False


async def revoke_token(
    session: AsyncSession,
    *,
    actor: Actor,
    actor_scopes: frozenset[Scope],
    actor_token_id: int,
    token_id: int,
) -> ApiToken:
    """Revoke a token and every token it minted, at any remove: the token in use itself or
    one it minted; another of the actor's with tokens:write; anyone's with staff:admin."""
    token = await session.get(ApiToken, token_id, with_for_update=True, populate_existing=True)
    admin = Scope.STAFF_ADMIN in actor_scopes
    if token is None or (token.staff_id != actor.staff_id and not admin):
        raise DomainError(ErrorCode.NOT_FOUND, "No such token", ["id"])
    if not (
        admin
        or Scope.TOKENS_WRITE in actor_scopes
        or await _descends_from(session, token, actor_token_id)
    ):
        raise PermissionDenied(
            "Revoking a token other than this one (or one it created) needs the tokens:write scope",
            Denial.MISSING_SCOPE,
            [["id"]],
        )
    if token.revoked_at is None:
        token.revoked_at = actor.now
        await session.flush()
        descendants = await revoke_descendants(session, token_id=token.id, now=actor.now)
        await audit.record(
            session,
            actor=actor,
            action="token.revoke",
            target_type="ApiToken",
            target_id=token.id,
            target_label=token.prefix,
            before={"revoked_at": None},
            after={"revoked_at": actor.now, "with_tokens_it_minted": descendants},
        )
        await session.commit()
    return token


async def revoke_descendants(session: AsyncSession, *, token_id: int, now: datetime) -> int:
    """Revoke every token the token minted, at any remove (in the caller's transaction);
    how many were still in force."""
    revoked = 0
    generation = [token_id]
    while generation:
        children = list(
            await session.scalars(select(ApiToken.id).where(ApiToken.parent_id.in_(generation)))
        )
        if children:
            result = await session.execute(
                update(ApiToken)
                .where(ApiToken.id.in_(children), ApiToken.revoked_at.is_(None))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
            revoked += result.rowcount  # type: ignore[attr-defined]  # a CursorResult
        generation = children
    return revoked
