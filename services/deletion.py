"""Deleted clients: kept for a retention period, restorable whole, then purged for good.

A deletion (services.clients.delete_clients) moves the client's row to `deleted_clients`
with a snapshot of everything that made it (its columns, access lists, custom values,
connections; the password hash apart, outside the audit log): the client is gone from every
list, search, count, tally and facet, and from the cabinet, because its row is; its ledger
entries stay where they are (they keep the id), and its login stays reserved. Restoring
writes the row back under the same id from the snapshot, its balance the sum of its ledger;
purging, after the period, forgets the snapshot (the audit log keeps its copy) and frees the
login.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Boolean, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.base import ExactDecimal, UTCDateTime
from db.enums import ConnectionStatus, ConnectionType
from db.models import (
    Category,
    Client,
    ClientConnection,
    CreditEntry,
    CustomFieldDefinition,
    CustomFieldValue,
    DeletedClient,
    Department,
    StaffUser,
    client_categories,
    client_departments,
)
from db.session import transaction
from services import audit
from services.actors import Actor
from services.custom_fields import check_value
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied
from services.validation import Checks

log = structlog.get_logger("clientdesk.deletion")

# The columns a restore writes from the snapshot (the others are the database's: computed,
# or kept by triggers; the balance is the ledger's sum).
_RESTORED = [
    column
    for column in Client.__table__.columns
    if column.key in {attribute.key for attribute in Client.__mapper__.column_attrs}
    and column.key not in {"id", "password_hash", "balance"}
]
# A password nobody can sign in with (not an argon2 hash): a client deleted before the hash
# was kept gets a new one through clientLoginDetailsSend.
NO_PASSWORD = "!restored-without-password"
MAX_RESTORE = 500


def purge_at(deleted_at: datetime, retention: timedelta) -> datetime:
    """When a deleted client is purged for good."""
    return deleted_at + retention


async def login_reserved(session: AsyncSession, login: str) -> DeletedClient | None:
    """The deleted client that keeps `login` reserved, if one does."""
    return await session.scalar(select(DeletedClient).where(DeletedClient.login == login).limit(1))


def _column_value(column: Any, value: Any) -> Any:
    """A snapshot's JSON value back in the column's Python type."""
    if value is None:
        return None
    type_ = column.type
    if isinstance(type_, UTCDateTime):
        return datetime.fromisoformat(value)
    if isinstance(type_, ExactDecimal):
        return Decimal(value)
    if isinstance(type_, Boolean):
        return bool(value)
    enum_class = getattr(type_, "enum_class", None)
    if enum_class is not None:
        return enum_class(value)
    return value


async def restore_clients(session: AsyncSession, *, actor: Actor, ids: Sequence[int]) -> list[int]:
    """Bring deleted clients back whole, under their ids: columns, password, access lists,
    custom values (of fields still defined), connections, the link to a parent that exists
    (restored in the same call, or never deleted) with the same currency; the balance is
    their ledger's sum. Admins restore any; a manager the clients that were theirs. All or
    nothing: NOT_FOUND for an id that is not a deleted client, LOGIN_TAKEN if another
    client holds the login now."""
    async with transaction(session):
        checks = Checks()
        if not ids:
            checks.add(ErrorCode.REQUIRED, "Select at least one client", ["ids"])
        if len(ids) > MAX_RESTORE:
            checks.add(ErrorCode.TOO_MANY, f"At most {MAX_RESTORE} clients at a time", ["ids"])
            checks.raise_if_any()
        rows = {
            row.id: row
            for row in await session.scalars(
                select(DeletedClient)
                .where(DeletedClient.id.in_(set(ids)))
                .order_by(DeletedClient.id)
                .with_for_update()
            )
        }
        wanted: list[DeletedClient] = []
        for n, pk in enumerate(ids):
            if pk not in rows:
                checks.add(ErrorCode.NOT_FOUND, "No such deleted client", ["ids", str(n)])
            elif rows[pk] not in wanted:
                wanted.append(rows[pk])
        checks.raise_if_any()
        if not actor.is_admin:
            theirs = [r for r in wanted if r.snapshot.get("manager_id") != actor.staff_id]
            if theirs:
                raise PermissionDenied(
                    "Managers restore only the clients that were theirs: not "
                    + ", ".join(r.login for r in theirs[:5]),
                    Denial.NOT_YOUR_CLIENT,
                    [["ids", str(ids.index(r.id))] for r in theirs],
                )
        taken = set(
            await session.scalars(
                select(Client.login).where(Client.login.in_(r.login for r in wanted))
            )
        )
        for row in wanted:
            if row.login in taken:
                checks.add(
                    ErrorCode.LOGIN_TAKEN,
                    f"Another client has the login {row.login} now",
                    ["ids", str(ids.index(row.id))],
                )
        checks.raise_if_any()
        restoring = {row.id for row in wanted}
        # parents before their sub-accounts
        wanted.sort(key=lambda row: row.snapshot.get("parent_id") in restoring)
        for row in wanted:
            await _restore_one(session, actor, row)
        return [row.id for row in wanted]


async def _restore_one(session: AsyncSession, actor: Actor, row: DeletedClient) -> None:
    session.expunge(row)  # read as it was: its row is deleted below
    snapshot = row.snapshot
    values = {c.key: _column_value(c, snapshot.get(c.key)) for c in _RESTORED}
    notes: list[str] = []
    if (
        values.get("manager_id") is not None
        and await session.get(StaffUser, values["manager_id"]) is None
    ):
        values["manager_id"] = None
        notes.append("its manager is gone: restored without one")
    if (
        values.get("blocked_by_id") is not None
        and await session.get(StaffUser, values["blocked_by_id"]) is None
    ):
        values["blocked_by_id"] = None
    parent_id = values.get("parent_id")
    if parent_id is not None:
        # the link's rules, on the parent's locked row: a top-level client in the same
        # currency, which a manager may change (clientLink's)
        parent = (
            await session.execute(
                select(Client.currency, Client.parent_id, Client.manager_id)
                .where(Client.id == parent_id)
                .with_for_update()
            )
        ).one_or_none()
        linkable = (
            parent is not None
            and parent.currency == values["currency"]
            and parent.parent_id is None
            and (actor.is_admin or parent.manager_id == actor.staff_id)
        )
        if not linkable:
            values["parent_id"] = None
            notes.append(
                f"its parent {parent_id} is gone, a sub-account now, in another currency or "
                "not the restorer's: restored top-level"
            )
    balance = await session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
            CreditEntry.client_id == row.id
        )
    )
    # (first: SQLite's trigger refuses a client row with the id of a deleted one)
    await session.execute(delete(DeletedClient).where(DeletedClient.id == row.id))
    try:
        async with session.begin_nested():
            await session.execute(
                insert(Client).values(
                    id=row.id,
                    password_hash=row.password_hash or NO_PASSWORD,
                    balance=Decimal(balance or 0),
                    **values,
                )
            )
    except IntegrityError:
        taken = await session.scalar(select(Client.id).where(Client.login == row.login))
        if taken is not None:  # a client took the login meanwhile
            raise DomainError(
                ErrorCode.LOGIN_TAKEN, f"Another client has the login {row.login} now", ["ids"]
            ) from None
        # what the row points at changed meanwhile (a staff user removed): run it again
        raise DomainError(
            ErrorCode.CONFLICT, f"{row.login} could not be restored just now: try again", ["ids"]
        ) from None
    departments = set(snapshot.get("department_ids") or [])
    if departments:
        found = await session.scalars(select(Department.id).where(Department.id.in_(departments)))
        rows = [{"client_id": row.id, "department_id": pk} for pk in found]
        if rows:
            await session.execute(insert(client_departments), rows)
    categories = set(snapshot.get("category_ids") or [])
    if categories:
        found = await session.scalars(select(Category.id).where(Category.id.in_(categories)))
        rows = [{"client_id": row.id, "category_id": pk} for pk in found]
        if rows:
            await session.execute(insert(client_categories), rows)
    custom = snapshot.get("custom_fields") or {}
    if custom:
        definitions = {
            definition.key: definition
            for definition in await session.scalars(
                select(CustomFieldDefinition).where(CustomFieldDefinition.key.in_(custom))
            )
        }
        for key, value in custom.items():
            definition = definitions.get(key)
            if definition is None:
                notes.append(f"custom field {key} is no longer defined: its value is left out")
                continue
            try:  # the field may have changed since (its type, its options)
                kept = check_value(definition, value, field=["ids"])
            except DomainError:
                notes.append(f"custom field {key} no longer takes {value!r}: left out")
                continue
            session.add(CustomFieldValue(client_id=row.id, definition_id=definition.id, value=kept))
    for connection in snapshot.get("connections") or []:
        session.add(
            ClientConnection(
                client_id=row.id,
                type=ConnectionType(connection["type"]),
                status=ConnectionStatus(connection["status"]),
            )
        )
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="client.restore",
        target_type="Client",
        target_id=row.id,
        target_label=row.login,
        after={
            "deleted_at": audit.json_safe(row.deleted_at),
            "balance": audit.json_safe(Decimal(balance or 0)),
            "parent_id": values.get("parent_id"),
            "notes": notes,
        },
    )


async def purge_expired(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, retention: timedelta
) -> int:
    """Forget the deleted clients whose retention period is over (their logins are free
    again; the audit log keeps their snapshots, the ledger their entries). How many."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            delete(DeletedClient).where(DeletedClient.deleted_at <= now - retention)
        )
        purged = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if purged:
        log.info("deleted_clients_purged", count=purged)
    return purged
