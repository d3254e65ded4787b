"""Blocks: a temporary restriction, separate from the status, that may expire by itself.

A block whose `blocked_until` has passed is no block: every read compares it with the
clock, so nothing has to run when it ends.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEntry, Client
from db.session import transaction
from services import audit
from services.actors import Actor
from services.clients import client_for_change
from services.errors import DomainError, ErrorCode
from services.validation import Checks, column_length, text

MAX_REASON = column_length(Client.block_reason, AuditEntry.reason)


def is_blocked(client: Client, now: datetime) -> bool:
    """Whether a block is in force at `now`."""
    return client.blocked_at is not None and (
        client.blocked_until is None or client.blocked_until > now
    )


def _block_state(client: Client) -> dict[str, object]:
    return {
        "block_reason": client.block_reason,
        "blocked_at": client.blocked_at,
        "blocked_until": client.blocked_until,
        "blocked_by_id": client.blocked_by_id,
    }


def block_reason(reason: str, until: datetime | None, now: datetime) -> str:
    """The reason as stored, if it and the end are valid (ValidationFailed otherwise)."""
    checks = Checks()
    cleaned = checks.run(text, reason, field=["reason"], maximum=MAX_REASON, required=True)
    if until is not None and until <= now:
        checks.add(ErrorCode.INVALID, "A block ends in the future", ["until"])
    checks.raise_if_any()
    assert cleaned is not None
    return cleaned


async def apply_block(
    session: AsyncSession, *, actor: Actor, client: Client, reason: str, until: datetime | None
) -> None:
    """Block a client the caller has locked and may change, in the caller's transaction
    (a checked `reason`: `block_reason`)."""
    before = _block_state(client)
    if not is_blocked(client, actor.now):
        client.blocked_at = actor.now  # a new block; a re-block keeps its start
    client.block_reason = reason
    client.blocked_until = until
    client.blocked_by_id = actor.staff_id
    client.updated_at = actor.now
    await audit.record(
        session,
        actor=actor,
        action="client.block",
        target_type="Client",
        target_id=client.id,
        target_label=client.login,
        before=before,
        after=_block_state(client),
        reason=reason,
    )


async def apply_unblock(session: AsyncSession, *, actor: Actor, client: Client) -> None:
    """Lift the block in force of a client the caller has locked and may change, in the
    caller's transaction."""
    before = _block_state(client)
    client.block_reason = client.blocked_at = client.blocked_until = None
    client.blocked_by_id = None
    client.updated_at = actor.now
    await audit.record(
        session,
        actor=actor,
        action="client.unblock",
        target_type="Client",
        target_id=client.id,
        target_label=client.login,
        before=before,
        after=_block_state(client),
    )


async def block(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    reason: str,
    until: datetime | None,
    expected_version: int | None = None,
) -> Client:
    """Block a client (again: a new reason and end replace the old ones), until a time or
    until someone unblocks them."""
    client = await client_for_change(
        session, actor=actor, client_id=client_id, expected_version=expected_version
    )
    cleaned = block_reason(reason, until, actor.now)
    async with transaction(session):
        await apply_block(session, actor=actor, client=client, reason=cleaned, until=until)
    return client


async def unblock(
    session: AsyncSession, *, actor: Actor, client_id: int, expected_version: int | None = None
) -> Client:
    """Lift a block in force."""
    client = await client_for_change(
        session, actor=actor, client_id=client_id, expected_version=expected_version
    )
    if not is_blocked(client, actor.now):
        raise DomainError(ErrorCode.NOT_BLOCKED, f"{client.login} is not blocked", ["id"])
    async with transaction(session):
        await apply_unblock(session, actor=actor, client=client)
    return client
