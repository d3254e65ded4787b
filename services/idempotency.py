"""Idempotency keys: a retried request with the same key applies once (Stripe's semantics).

The key is claimed in the transaction that does the work, and its response stored there too,
so a key is either unused, or used with a committed result. A concurrent request with the
same key waits at the unique index (PostgreSQL) or the write lock (SQLite) until the first
one commits, and then replays it.
"""

import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyKey
from services.audit import json_safe
from services.errors import DomainError, ErrorCode
from services.validation import column_length

KEEP_FOR = timedelta(hours=24)
MAX_LENGTH = column_length(IdempotencyKey.key)


def fingerprint(operation: str, request: dict[str, Any]) -> str:
    """A digest of what a request asks for, to tell a retry from a different request."""
    canonical = orjson.dumps([operation, json_safe(request)], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def check_key(key: str, *, field: list[str]) -> str:
    """A key as given: 1-200 printable characters (so no NUL)."""
    if len(key) > MAX_LENGTH:
        raise DomainError(ErrorCode.TOO_LONG, f"At most {MAX_LENGTH} characters", field)
    if not key or not key.isprintable():
        raise DomainError(
            ErrorCode.INVALID, f"An idempotency key is 1-{MAX_LENGTH} printable characters", field
        )
    return key


async def claim(
    session: AsyncSession,
    *,
    staff_id: int,
    key: str,
    operation: str,
    request_hash: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Reserve `key` for this request (None), or return the response of the request that
    used it first. The same key with another request is an error."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(IdempotencyKey)
        .values(
            staff_id=staff_id,
            key=key,
            operation=operation,
            request_hash=request_hash,
            created_at=now,
            expires_at=now + KEEP_FOR,
        )
        .on_conflict_do_nothing(index_elements=["staff_id", "key"])
        .returning(IdempotencyKey.id)
    )
    if await session.scalar(statement) is not None:
        return None
    used = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.staff_id == staff_id, IdempotencyKey.key == key)
    )
    assert used is not None  # it conflicted, and keys are only deleted here
    if used.expires_at <= now:  # forgotten: the key is free again
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == used.id))
        return await claim(
            session,
            staff_id=staff_id,
            key=key,
            operation=operation,
            request_hash=request_hash,
            now=now,
        )
    if used.operation != operation or used.request_hash != request_hash:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This idempotency key was used for a different request",
            ["idempotency_key"],
        )
    assert used.response is not None  # stored in the transaction that claimed it
    return used.response


async def remember(
    session: AsyncSession, *, staff_id: int, key: str, response: dict[str, Any]
) -> None:
    """Store the response of the request that claimed `key`, in its transaction."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.staff_id == staff_id, IdempotencyKey.key == key)
        .values(response=response)
    )


async def forget_expired(session: AsyncSession, *, now: datetime) -> int:
    """Delete keys past their 24 hours (the servers' background jobs do it)."""
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
