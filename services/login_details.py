"""Telling a client how to sign in: a one-time link to set their own password, at creation
or sent again later (the newest link replaces the ones before it).

The e-mail never carries a password: the link's token is stored as SHA-256 only, works once,
and expires.
"""

import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client, ClientPasswordToken
from db.session import transaction
from services import mail
from services.auth import hash_password_async, token_digest
from services.errors import DomainError, ErrorCode
from services.passwords import check_password_async

SUBJECT = "Your new account"
RESENT_SUBJECT = "How to sign in to your account"
KIND = "login_details"  # the outbox messages a client's page shows (`Client.loginDetails`)


async def send_login_details(
    session: AsyncSession,
    *,
    client: Client,
    now: datetime,
    cabinet_base_url: str,
    valid_for: timedelta,
    again: bool = False,
) -> None:
    """Queue the login e-mail with a fresh set-password link, in the caller's transaction."""
    assert client.email is not None
    token = secrets.token_urlsafe(32)
    expires_at = now + valid_for
    session.add(
        ClientPasswordToken(
            client_id=client.id,
            token_hash=token_digest(token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    link = f"{cabinet_base_url.rstrip('/')}/set-password?{urlencode({'token': token})}"
    name = mail.one_line(client.name or "")
    greeting = f"Hello {name}," if name else "Hello,"
    opening = (
        "here is how to sign in to your account" if again else "an account has been opened for you"
    )
    body = (
        f"{greeting}\n\n"
        f"{opening}.\n\n"
        f"Login: {client.login}\n\n"
        f"Choose your password here (the link works once, until "
        f"{expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n"
    )
    await mail.enqueue(
        session,
        recipient=client.email,
        recipient_name=client.name,
        subject=RESENT_SUBJECT if again else SUBJECT,
        body=body,
        now=now,
        client_id=client.id,
        kind=KIND,
    )


async def set_password_with_token(
    session: AsyncSession, *, token: str, password: str, now: datetime, min_score: int
) -> Client:
    """Set the password of the client a valid, unused link belongs to, and spend the link."""
    digest = token_digest(token)
    row = await session.scalar(
        select(ClientPasswordToken).where(ClientPasswordToken.token_hash == digest)
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise DomainError(ErrorCode.INVALID, "This link is unknown, used or expired", ["token"])
    client = await session.get(Client, row.client_id)
    assert client is not None  # tokens go with their client
    await check_password_async(
        password,
        field=["password"],
        user_inputs=[client.login, client.name or "", client.email or ""],
        min_score=min_score,
    )
    password_hash = await hash_password_async(password)
    async with transaction(session):
        spent = await session.execute(
            update(ClientPasswordToken)
            .where(
                ClientPasswordToken.id == row.id,
                ClientPasswordToken.used_at.is_(None),
                # a newer link sent meanwhile (while the password was hashed) ended this one
                ClientPasswordToken.expires_at > now,
            )
            .values(used_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent use won
            raise DomainError(ErrorCode.INVALID, "This link is unknown, used or expired", ["token"])
        client.password_hash = password_hash
        client.updated_at = now
    return client
