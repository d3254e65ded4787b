""" "In cabinet": a short-lived, signed token that opens one client's own interface for a
staff user, audited with the reason; and checking such a token on the cabinet's side."""

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ClientStatus
from db.models import AuditEntry, Client
from db.session import transaction
from services import audit
from services.actors import Actor
from services.blocking import is_blocked
from services.clients import client_for_change
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
class CabinetSession:
    """What a valid token says: which client, opened by whom, until when."""

    client_id: int
    staff_id: int
    expires_at: datetime
    token_id: str


async def impersonate(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    reason: str,
    force: bool,
    secret: str,
    lifetime: timedelta,
    cabinet_base_url: str,
) -> CabinetPass:
    """A token for the client's cabinet; refused for a client who cannot sign in (blocked or
    inactive) unless an admin forces it."""
    client = await client_for_change(session, actor=actor, client_id=client_id)
    cleaned = text(reason, field=["reason"], maximum=MAX_REASON, required=True)
    locked_out = client.status is not ClientStatus.ACTIVE or is_blocked(client, actor.now)
    if locked_out and not force:
        raise DomainError(
            ErrorCode.CLIENT_CANNOT_LOGIN,
            f"{client.login} is blocked or inactive; an admin may open the cabinet with force",
            ["id"],
        )
    if force and locked_out and not actor.is_admin:
        raise DomainError(ErrorCode.NOT_ALLOWED, "Only admins may force it", ["force"])
    token_id = secrets.token_urlsafe(12)
    expires_at = actor.now + lifetime
    token = jwt.encode(
        {
            "sub": str(client.id),
            "act": {"sub": str(actor.staff_id), "email": actor.email},
            "aud": AUDIENCE,
            "iat": int(actor.now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": token_id,
        },
        secret,
        algorithm=ALGORITHM,
    )
    async with transaction(session):
        await audit.record(
            session,
            actor=actor,
            action="client.impersonate",
            target_type="Client",
            target_id=client.id,
            target_label=client.login,
            reason=cleaned,
            after={"token_id": token_id, "expires_at": expires_at, "forced": force and locked_out},
        )
    # The token goes in the fragment: browsers do not send it to servers or in Referer headers.
    url = f"{cabinet_base_url.rstrip('/')}/impersonate#token={token}"
    return CabinetPass(token=token, expires_at=expires_at, url=url, client=client)


def verify(token: str, *, secret: str, now: datetime) -> CabinetSession:
    """The session a token stands for; a tampered, foreign or expired one is refused, and so
    is one whose claims are not what `impersonate` writes."""
    invalid = DomainError(ErrorCode.INVALID_TOKEN, "The token is not valid", ["token"])
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            # expiry is checked below against the injected clock, not the system's
            options={"verify_exp": False, "require": ["sub", "act", "exp", "jti", "aud"]},
        )
    except jwt.InvalidTokenError:
        raise invalid from None
    act, exp, token_id = claims["act"], claims["exp"], claims["jti"]
    client_id = _row_id(claims["sub"])
    staff_id = _row_id(act.get("sub") if isinstance(act, dict) else None)
    if client_id is None or staff_id is None or type(exp) is not int:
        raise invalid
    try:
        expires_at = datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):  # beyond the years datetime holds
        raise invalid from None
    if expires_at <= now:
        raise DomainError(ErrorCode.TOKEN_EXPIRED, "The token has expired", ["token"])
    return CabinetSession(
        client_id=client_id, staff_id=staff_id, expires_at=expires_at, token_id=str(token_id)
    )


def _row_id(claim: object) -> int | None:
    """The row id in a claim, or None if the claim is not one."""
    return int(claim) if isinstance(claim, str) and ROW_ID.fullmatch(claim) else None
