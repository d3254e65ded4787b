"""Idempotency keys: a retried request with the same key applies once (Stripe's semantics).

The key is claimed in the transaction that does the work, and its response stored there too,
so a key is either unused, or used with a committed result. A concurrent request with the
same key waits at the unique index (PostgreSQL) or the write lock (SQLite) until the first
one commits, and then replays it.
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Insert, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyKey
from services.audit import json_safe
from services.errors import DomainError, ErrorCode
from services.validation import column_length

KEEP_FOR = timedelta(hours=24)
MAX_LENGTH = column_length(IdempotencyKey.key)


# The version of the canonical form below, hashed with it. Keys claimed before it (hashed
# from the request as spelled) are still told apart from other requests by that older hash,
# until they expire: a retry across the upgrade replays. Both go a KEEP_FOR after the upgrade.
FORM = "v2"


def canonical(value: Any) -> Any:
    """A request's value as it is compared: amounts by value ("12.5" is "12.50", "2" is
    "2.00"), texts without the spaces around them (they are stored trimmed; "" is no text),
    instants in UTC, enums by value; ids are already their rows' keys (the API accepts one
    spelling of a global ID and reads it into the key). Dictionaries' order does not count;
    lists' does."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return "0" if value == 0 else format(value.normalize(), "f")
    if isinstance(value, Enum):
        return canonical(value.value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo is not None else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def fingerprint(operation: str, request: dict[str, Any]) -> str:
    """A digest of what a request asks for, to tell a retry from a different request."""
    form = orjson.dumps([FORM, operation, canonical(request)], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(form).hexdigest()


def _spelled_fingerprint(operation: str, request: dict[str, Any]) -> str:
    """The digest keys were claimed with before FORM: the request as spelled."""
    spelled = orjson.dumps([operation, json_safe(request)], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(spelled).hexdigest()


def fingerprints(operation: str, request: dict[str, Any]) -> tuple[str, ...]:
    """The digests a key claimed by this request may hold: the current one first (a new claim
    stores it), then the one keys claimed before the current form hold."""
    return fingerprint(operation, request), _spelled_fingerprint(operation, request)


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
    request_hashes: Sequence[str],
    now: datetime,
) -> dict[str, Any] | None:
    """Reserve `key` for this request (None), or return the response of the request that
    used it first. The same key with another request is an error. `request_hashes` are the
    request's `fingerprints`: the first is stored, any matches."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(IdempotencyKey)
        .values(
            staff_id=staff_id,
            key=key,
            operation=operation,
            request_hash=request_hashes[0],
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
            request_hashes=request_hashes,
            now=now,
        )
    if used.operation != operation or used.request_hash not in request_hashes:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This idempotency key was used for a different request",
            ["idempotency_key"],
        )
    assert used.response is not None  # stored in the transaction that claimed it
    return used.response


def claim_statement(response: dict[str, ColumnElement[Any]]) -> Insert:
    """PostgreSQL: the statement that claims a key with its response stored at once (the
    response's values are SQL: the id of the row about to be written, say), to be run with
    `claim_parameters` as part of the statement doing the work. Where the key is taken it
    inserts nothing (a concurrent claim waits for the first to commit or roll back)."""
    return (
        postgresql.insert(IdempotencyKey)
        .from_select(
            [
                "staff_id",
                "key",
                "operation",
                "request_hash",
                "created_at",
                "expires_at",
                "response",
            ],
            select(
                bindparam("key_staff_id", type_=IdempotencyKey.staff_id.type),
                bindparam("key_key", type_=IdempotencyKey.key.type),
                bindparam("key_operation", type_=IdempotencyKey.operation.type),
                bindparam("key_request_hash", type_=IdempotencyKey.request_hash.type),
                bindparam("key_created_at", type_=IdempotencyKey.created_at.type),
                bindparam("key_expires_at", type_=IdempotencyKey.expires_at.type),
                func.jsonb_build_object(*(item for pair in response.items() for item in pair)),
            ),
        )
        .on_conflict_do_nothing(index_elements=["staff_id", "key"])
    )


def claim_parameters(
    *, staff_id: int, key: str, operation: str, request_hashes: Sequence[str], now: datetime
) -> dict[str, Any]:
    """The values of a `claim_statement`'s parameters."""
    return {
        "key_staff_id": staff_id,
        "key_key": key,
        "key_operation": operation,
        "key_request_hash": request_hashes[0],
        "key_created_at": now,
        "key_expires_at": now + KEEP_FOR,
    }


async def answered_with(
    session: AsyncSession, *, staff_id: int, key: str | None, entry_id: int, now: datetime
) -> bool:
    """Whether `key`, still in force, was used for the request that made ledger entry
    `entry_id` (a check a retry would fail, such as "already reversed", leaves it to `claim`)."""
    if key is None:
        return False
    response = await session.scalar(
        select(IdempotencyKey.response).where(
            IdempotencyKey.staff_id == staff_id,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at > now,
        )
    )
    return response is not None and response.get("entry_id") == entry_id


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
