"""`systemSettings` and `systemSettingsUpdate`: Billing Mode, read by every staff user,
changed by admins."""

from datetime import datetime
from typing import Annotated

import strawberry

from db.enums import Scope
from gql.context import Info
from gql.errors import UserError, attempt
from gql.permissions import AdminsOnly, HasScope, IsAuthenticated
from services import system_settings


@strawberry.type(description="Settings that apply to the whole system.")
class SystemSettings:
    billing_mode: bool = strawberry.field(
        description="Billing Mode (on by default): clients' credits and `validTill` are used. "
        "When off, `validTill` does not restrict `canLogin`, and money mutations (creditAdd, "
        "creditDeduct, creditNoteCreate, creditEntryReverse) are refused with BILLING_MODE_OFF."
    )
    updated_at: datetime | None = strawberry.field(
        description="When an admin last changed the settings; null if never."
    )


@strawberry.input(description="The settings to change; fields left out stay as they are.")
class SystemSettingsUpdateInput:
    billing_mode: bool | None = strawberry.field(default=None, description="Billing Mode.")


@strawberry.type(description="The settings after the change, or why it was refused.")
class SystemSettingsPayload:
    system_settings: SystemSettings | None = strawberry.field(description="The settings.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


def _shown(settings: system_settings.Settings) -> SystemSettings:
    return SystemSettings(billing_mode=settings.billing_mode, updated_at=settings.updated_at)


@strawberry.type
class SystemSettingsQuery:
    @strawberry.field(
        description="The system settings (every staff user may read them).",
        permission_classes=[IsAuthenticated],
    )
    async def system_settings(self, info: Info) -> SystemSettings:
        async with info.context.db.exclusive() as session:
            return _shown(await system_settings.read_settings(session))


@strawberry.type
class SystemSettingsMutation:
    @strawberry.mutation(
        description="Change system settings (admins); audited.",
        permission_classes=[HasScope(Scope.STAFF_ADMIN), AdminsOnly],
    )
    async def system_settings_update(
        self,
        info: Info,
        input: Annotated[
            SystemSettingsUpdateInput, strawberry.argument(description="What to change.")
        ],
    ) -> SystemSettingsPayload:
        if input.billing_mode is None:
            async with info.context.db.exclusive() as session:
                current = await system_settings.read_settings(session)
            return SystemSettingsPayload(system_settings=_shown(current), user_errors=[])
        changed, errors = await attempt(
            info, system_settings.set_billing_mode, enabled=input.billing_mode
        )
        return SystemSettingsPayload(
            system_settings=_shown(changed) if changed else None, user_errors=errors
        )
