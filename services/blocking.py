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


async def block(
    session: AsyncSession, *, actor: Actor, client_id: int, reason: str, until: datetime | None
) -> Client:
    """Block a client (again: a new reason and end replace the old ones), until a time or
    until someone unblocks them."""
    client = await client_for_change(session, actor=actor, client_id=client_id)
    checks = Checks()
    cleaned = checks.run(text, reason, field=["reason"], maximum=MAX_REASON, required=True)
    if until is not None and until <= actor.now:
        checks.add(ErrorCode.INVALID, "A block ends in the future", ["until"])
    checks.raise_if_any()
    before = _block_state(client)
    async with transaction(session):
        if not is_blocked(client, actor.now):
            client.blocked_at = actor.now  # a new block; a re-block keeps its start
        client.block_reason = cleaned
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
            reason=cleaned,
        )
    return client


async def unblock(session: AsyncSession, *, actor: Actor, client_id: int) -> Client:
    """Lift a block in force."""
    client = await client_for_change(session, actor=actor, client_id=client_id)
    if not is_blocked(client, actor.now):
        raise DomainError(ErrorCode.NOT_BLOCKED, f"{client.login} is not blocked", ["id"])
    before = _block_state(client)
    async with transaction(session):
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
    return client
