""" "In cabinet": a short-lived, signed token that opens one client's own interface for a
staff user, audited with the reason; the server-side session it names, checked again on every
use and revocable; and checking such a token on the cabinet's side."""

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ClientStatus, Scope, StaffRole
from db.models import ApiToken, AuditEntry, CabinetSession, Client, StaffUser
from db.session import transaction
from services import audit
from services.actors import Actor
from services.blocking import is_blocked
from services.clients import client_for_change, may_change
from services.errors import DomainError, ErrorCode
from services.validation import column_length, text

ALGORITHM = "HS256"
AUDIENCE = "clientdesk-cabinet"
# Ids as tokens carry them (`str(id)`); longer ones lie beyond any table's ids (as in gql/node).
ROW_ID = re.compile(r"[0-9]{1,18}")
MAX_REASON = column_length(AuditEntry.reason)


@dataclass(frozen=True, slots=True)
class CabinetPass:
    """An issued token and where it opens the cabinet."""

    token: str
    expires_at: datetime
    url: str
    client: Client


@dataclass(frozen=True, slots=True)
class CabinetClaims:
    """What a valid token says: which session, for which client, opened by whom, until when."""

    session_id: int
    client_id: int
    staff_id: int
    expires_at: datetime
    token_id: str


@dataclass(frozen=True, slots=True)
class OpenCabinet:
    """A session that holds now: the client it opens and who opened it."""

    client: Client
    impersonated_by: str
    expires_at: datetime


class SessionEnd(StrEnum):
    """Why a cabinet session no longer opens the cabinet (`error.reason` at /cabinet/*)."""

    REVOKED = "revoked"  # clientCabinetSessionsRevoke
    EXPIRED = "expired"
    GONE = "gone"  # the client or the issuing API token was deleted
    CLIENT_INACTIVE = "client_inactive"
    CLIENT_BLOCKED = "client_blocked"
    ISSUER_DEACTIVATED = "issuer_deactivated"
    ISSUER_NOT_ALLOWED = "issuer_not_allowed"  # e.g. the client was reassigned to another manager
    TOKEN_REVOKED = "token_revoked"  # the staff token it was opened with (or its owner's access)
    TOKEN_EXPIRED = "token_expired"


class SessionEnded(DomainError):
    """A cabinet session that stood once and does not now, and why."""

    def __init__(self, reason: SessionEnd, message: str) -> None:
        super().__init__(ErrorCode.SESSION_ENDED, message, ["token"])
        self.reason = reason


def locked_out(client: Client, now: datetime) -> bool:
    """Whether the client cannot sign in to the cabinet: inactive, or a block in force."""
    return client.status is not ClientStatus.ACTIVE or is_blocked(client, now)


async def impersonate(
    session: AsyncSession,
    *,
    actor: Actor,
    token_id: int,
    client_id: int,
    reason: str,
    force: bool,
    secret: str,
    lifetime: timedelta,
    cabinet_base_url: str,
) -> CabinetPass:
    """A session and its token for the client's cabinet, opened with the actor's API token
    `token_id`; refused for a client who cannot sign in (blocked or inactive) unless an admin
    forces it."""
    cleaned = text(reason, field=["reason"], maximum=MAX_REASON, required=True)
    async with transaction(session):
        # client_for_change locks the row: a block or a reassignment at the same moment comes
        # before or after, never in between
        client = await client_for_change(session, actor=actor, client_id=client_id)
        forced = locked_out(client, actor.now)
        if forced and not force:
            raise DomainError(
                ErrorCode.CLIENT_CANNOT_LOGIN,
                f"{client.login} is blocked or inactive; an admin may open the cabinet with force",
                ["id"],
            )
        if forced and not actor.is_admin:
            raise DomainError(ErrorCode.NOT_ALLOWED, "Only admins may force it", ["force"])
        expires_at = actor.now + lifetime
        row = CabinetSession(
            client_id=client.id,
            issued_by_id=actor.staff_id,
            api_token_id=token_id,
            forced=forced,
            created_at=actor.now,
            expires_at=expires_at,
        )
        session.add(row)
        await session.flush()
        jti = secrets.token_urlsafe(12)
        await audit.record(
            session,
            actor=actor,
            action="client.impersonate",
            target_type="Client",
            target_id=client.id,
            target_label=client.login,
            reason=cleaned,
            after={
                "session_id": row.id,
                "token_id": jti,
                "expires_at": expires_at,
                "forced": forced,
            },
        )
    token = jwt.encode(
        {
            "sub": str(client.id),
            "sid": str(row.id),
            "act": {"sub": str(actor.staff_id), "email": actor.email},
            "aud": AUDIENCE,
            "iat": int(actor.now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": jti,
        },
        secret,
        algorithm=ALGORITHM,
    )
    # The token goes in the fragment: browsers do not send it to servers or in Referer headers.
    url = f"{cabinet_base_url.rstrip('/')}/impersonate#token={token}"
    return CabinetPass(token=token, expires_at=expires_at, url=url, client=client)


async def revoke_sessions(
    session: AsyncSession, *, actor: Actor, client_id: int, reason: str | None
) -> tuple[Client, int]:
    """End every cabinet session of a client that is still open, audited; how many there were."""
    cleaned = text(reason, field=["reason"], maximum=MAX_REASON)
    async with transaction(session):
        client = await client_for_change(session, actor=actor, client_id=client_id)
        live = (
            await session.scalars(
                select(CabinetSession)
                .where(
                    CabinetSession.client_id == client.id,
                    CabinetSession.revoked_at.is_(None),
                    CabinetSession.expires_at > actor.now,
                )
                .order_by(CabinetSession.id)
                .with_for_update()
            )
        ).all()
        for row in live:
            row.revoked_at = actor.now
            row.revoked_by_id = actor.staff_id
            row.revoked_reason = cleaned
        await audit.record(
            session,
            actor=actor,
            action="client.cabinet_sessions_revoke",
            target_type="Client",
            target_id=client.id,
            target_label=client.login,
            after={"session_ids": [row.id for row in live]},
            reason=cleaned,
        )
    return client, len(live)


async def open_session(
    session: AsyncSession, *, token: str, secret: str, now: datetime
) -> OpenCabinet:
    """The cabinet a token opens now: its session must exist, be neither revoked nor expired,
    its client exist, be active and not blocked (unless an admin forced it open), and its
    issuer still be allowed to open it with an API token in force."""
    claims = verify(token, secret=secret, now=now)
    found = (
        await session.execute(
            select(CabinetSession, Client, StaffUser, ApiToken)
            .join(Client, Client.id == CabinetSession.client_id)
            .join(StaffUser, StaffUser.id == CabinetSession.issued_by_id)
            .join(ApiToken, ApiToken.id == CabinetSession.api_token_id)
            .where(CabinetSession.id == claims.session_id)
        )
    ).one_or_none()
    if found is None:
        raise SessionEnded(SessionEnd.GONE, "The client or the staff token was deleted")
    row, client, staff, api_token = found
    if (row.client_id, row.issued_by_id) != (claims.client_id, claims.staff_id):
        raise DomainError(ErrorCode.INVALID_TOKEN, "The token is not valid", ["token"])
    if row.revoked_at is not None:
        raise SessionEnded(SessionEnd.REVOKED, "The session was revoked")
    if row.expires_at <= now:
        raise SessionEnded(SessionEnd.EXPIRED, "The session has expired")
    if not staff.is_active:
        raise SessionEnded(SessionEnd.ISSUER_DEACTIVATED, "Its staff user was deactivated")
    if api_token.revoked_at is not None:
        raise SessionEnded(SessionEnd.TOKEN_REVOKED, "The staff token that opened it is revoked")
    if api_token.expires_at is not None and api_token.expires_at <= now:
        raise SessionEnded(SessionEnd.TOKEN_EXPIRED, "The staff token that opened it expired")
    issuer = Actor(staff.id, staff.email, staff.role, now)
    allowed = Scope.CLIENTS_IMPERSONATE.value in api_token.scopes
    if not allowed or not (await may_change(session, issuer, [client]))[0]:
        raise SessionEnded(
            SessionEnd.ISSUER_NOT_ALLOWED, "Its staff user may no longer open this cabinet"
        )
    # an admin's force opened it over the block or status; only an admin's keeps it open
    if locked_out(client, now) and not (row.forced and staff.role is StaffRole.ADMIN):
        if client.status is not ClientStatus.ACTIVE:
            raise SessionEnded(SessionEnd.CLIENT_INACTIVE, f"{client.login} is inactive")
        raise SessionEnded(SessionEnd.CLIENT_BLOCKED, f"{client.login} is blocked")
    return OpenCabinet(client=client, impersonated_by=staff.email, expires_at=row.expires_at)


def verify(token: str, *, secret: str, now: datetime) -> CabinetClaims:
    """What a token says; a tampered, foreign or expired one is refused, and so is one whose
    claims are not what `impersonate` writes."""
    invalid = DomainError(ErrorCode.INVALID_TOKEN, "The token is not valid", ["token"])
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            # expiry is checked below against the injected clock, not the system's
            options={"verify_exp": False, "require": ["sub", "sid", "act", "exp", "jti", "aud"]},
        )
    except jwt.InvalidTokenError:
        raise invalid from None
    act, exp, token_id = claims["act"], claims["exp"], claims["jti"]
    client_id, session_id = _row_id(claims["sub"]), _row_id(claims["sid"])
    staff_id = _row_id(act.get("sub") if isinstance(act, dict) else None)
    if client_id is None or session_id is None or staff_id is None or type(exp) is not int:
        raise invalid
    try:
        expires_at = datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):  # beyond the years datetime holds
        raise invalid from None
    if expires_at <= now:
        raise DomainError(ErrorCode.TOKEN_EXPIRED, "The token has expired", ["token"])
    return CabinetClaims(
        session_id=session_id,
        client_id=client_id,
        staff_id=staff_id,
        expires_at=expires_at,
        token_id=str(token_id),
    )


def _row_id(claim: object) -> int | None:
    """The row id in a claim, or None if the claim is not one."""
    return int(claim) if isinstance(claim, str) and ROW_ID.fullmatch(claim) else None
