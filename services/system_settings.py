"""System-wide settings an admin changes through the API, audited: Billing Mode.

Billing Mode (the helpdesk's "Credits and Valid till is shown and used when Billing Mode in
your settings is turned on"), on by default: when off, `validTill` does not restrict who can
log in, and money is not moved (creditAdd, creditDeduct, creditNoteCreate and
creditEntryReverse are refused with BILLING_MODE_OFF).

Reads of clients carry the setting as a column of their own statement (db.queries
`billing_mode_column`); the money operations read it with the client's row lock, in the same
statement. The setting's row is not locked by them: a payment that read it on just before an
admin turned it off may still post.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BILLING_MODE_KEY, SystemSetting
from db.session import transaction
from services import audit
from services.actors import Actor
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied

BILLING_MODE = BILLING_MODE_KEY
DEFAULT_BILLING_MODE = True


@dataclass(frozen=True, slots=True)
class Settings:
    """The system settings as they stand, with who changed them last and when."""

    billing_mode: bool
    updated_at: datetime | None
    updated_by_id: int | None


async def read_settings(session: AsyncSession) -> Settings:
    """The settings now (defaults where none was set)."""
    row = await session.get(SystemSetting, BILLING_MODE)
    if row is None:
        return Settings(DEFAULT_BILLING_MODE, None, None)
    return Settings(bool(row.value), row.updated_at, row.updated_by_id)


def billing_refusal(billing_mode: bool) -> DomainError | None:
    """The refusal of a money operation while Billing Mode is off (as read with the client's
    row lock, services.locks.LOCK_ROW), or None."""
    if billing_mode:
        return None
    return DomainError(
        ErrorCode.BILLING_MODE_OFF,
        "Billing Mode is off: balances and credits are not used (systemSettings).",
    )


async def set_billing_mode(session: AsyncSession, *, actor: Actor, enabled: bool) -> Settings:
    """Turn Billing Mode on or off (admins), audited."""
    if not actor.is_admin:
        raise PermissionDenied("Only admins change system settings", Denial.ADMINS_ONLY)
    async with transaction(session):
        # the row made first if need be, so two first changes at once queue on its lock
        postgresql = session.get_bind().dialect.name == "postgresql"
        insert = postgresql_insert if postgresql else sqlite_insert
        await session.execute(
            insert(SystemSetting)
            .values(key=BILLING_MODE, value=DEFAULT_BILLING_MODE, updated_at=actor.now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = await session.get(SystemSetting, BILLING_MODE, with_for_update=True)
        assert row is not None  # made above
        before = bool(row.value)
        row.value = enabled
        row.updated_at = actor.now
        row.updated_by_id = actor.staff_id
        if before != enabled:
            await audit.record(
                session,
                actor=actor,
                action="settings.update",
                target_type="SystemSettings",
                target_id=None,
                target_label="billingMode",
                before={"billing_mode": before},
                after={"billing_mode": enabled},
            )
        settings = Settings(enabled, actor.now, actor.staff_id)
    return settings
