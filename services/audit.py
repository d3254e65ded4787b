"""The audit log: who changed what, when, with the values before and after."""

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEntry, Client
from services.actors import Actor

# Columns a client snapshot leaves out: secrets, and what never changes by itself.
SNAPSHOT_EXCLUDES = frozenset({"password_hash"})


def json_safe(value: Any) -> Any:
    """A value as JSON can hold it: exact decimals as strings, times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return value


def client_snapshot(client: Client) -> dict[str, Any]:
    """Every mapped column of a client but its password hash, JSON-safe (the search text is
    derived from the others, and not mapped)."""
    return {
        attribute.key: json_safe(getattr(client, attribute.key))
        for attribute in Client.__mapper__.column_attrs
        if attribute.key not in SNAPSHOT_EXCLUDES
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose value differs, from each side."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def row_values(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: int | None,
    target_label: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The column values of an audit entry, for a statement that inserts it with others."""
    return {
        "occurred_at": actor.now,
        "actor_id": actor.staff_id,
        "actor_email": actor.email,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "before": json_safe(before) if before is not None else None,
        "after": json_safe(after) if after is not None else None,
        "reason": reason,
        "request_id": actor.request_id,
    }


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: int | None,
    target_label: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Add an audit entry to the session's transaction (it commits with the change)."""
    entry = AuditEntry(
        **row_values(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_label=target_label,
            before=before,
            after=after,
            reason=reason,
        )
    )
    session.add(entry)
    return entry
