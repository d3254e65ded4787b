"""Custom client fields: definitions admins manage, and values checked against them."""

import math
import re
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import CustomFieldType
from db.models import CustomFieldDefinition, CustomFieldValue
from db.session import transaction
from services import audit
from services.actors import Actor
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied
from services.validation import Checks, text

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_OPTIONS = 100
MAX_TEXT = 1000


def check_value(definition: CustomFieldDefinition, value: Any, *, field: list[str]) -> Any:
    """A value as stored for the definition's type (None clears it); refuses what does not fit."""
    if value is None:
        return None
    kind = definition.type

    def invalid(expected: str) -> DomainError:
        return DomainError(
            ErrorCode.CUSTOM_FIELD_INVALID, f"{definition.label} takes {expected}", field
        )

    if kind is CustomFieldType.TEXT:
        if not isinstance(value, str):
            raise invalid("text")
        if len(value) > MAX_TEXT:
            raise DomainError(ErrorCode.TOO_LONG, f"At most {MAX_TEXT} characters", field)
        return value.strip() or None
    if kind is CustomFieldType.NUMBER:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise invalid("a number")
        return value
    if kind is CustomFieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise invalid("true or false")
        return value
    if kind is CustomFieldType.DATE:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise invalid("a date written YYYY-MM-DD")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise invalid("a real calendar date") from None
    if not isinstance(value, str) or value not in (definition.options or []):
        raise invalid("one of: " + ", ".join(definition.options or []))
    return value


def check_options(
    type_: CustomFieldType, options: list[str] | None, checks: Checks
) -> list[str] | None:
    """SELECT fields need 1-100 distinct, non-empty options; other types take none."""
    if type_ is not CustomFieldType.SELECT:
        if options:
            checks.add(ErrorCode.INVALID, "Only SELECT fields have options", ["options"])
        return None
    cleaned = [option.strip() for option in options or []]
    if not cleaned:
        checks.add(ErrorCode.REQUIRED, "A SELECT field needs options", ["options"])
    elif len(cleaned) > MAX_OPTIONS:
        checks.add(ErrorCode.TOO_MANY, f"At most {MAX_OPTIONS} options", ["options"])
    elif len(set(cleaned)) != len(cleaned) or not all(cleaned):
        checks.add(ErrorCode.INVALID, "Options must be distinct and not empty", ["options"])
    elif any(len(option) > 100 for option in cleaned):
        checks.add(ErrorCode.TOO_LONG, "Options are at most 100 characters", ["options"])
    return cleaned


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Only admins define custom fields", Denial.ADMINS_ONLY)


def _snapshot(definition: CustomFieldDefinition) -> dict[str, Any]:
    return {
        "key": definition.key,
        "label": definition.label,
        "type": definition.type,
        "options": definition.options,
        "required": definition.required,
        "position": definition.position,
    }


async def create_definition(
    session: AsyncSession,
    *,
    actor: Actor,
    key: str,
    label: str,
    type: CustomFieldType,
    options: list[str] | None = None,
    required: bool = False,
    position: int = 0,
) -> CustomFieldDefinition:
    """Define a new custom field (admins only)."""
    _require_admin(actor)
    checks = Checks()
    key = key.strip()
    if not KEY_PATTERN.fullmatch(key):
        checks.add(
            ErrorCode.INVALID,
            "A key is a lower-case letter, then up to 63 of a-z, 0-9 and '_'",
            ["key"],
        )
    elif await session.scalar(
        select(CustomFieldDefinition.id).where(CustomFieldDefinition.key == key)
    ):
        checks.add(ErrorCode.DUPLICATE, f"A field with key {key!r} exists", ["key"])
    cleaned_label = checks.run(text, label, field=["label"], maximum=200, required=True)
    cleaned_options = check_options(type, options, checks)
    checks.raise_if_any()
    async with transaction(session):
        definition = CustomFieldDefinition(
            key=key,
            label=cleaned_label,
            type=type,
            options=cleaned_options,
            required=required,
            position=position,
            created_at=actor.now,
        )
        session.add(definition)
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action="custom_field.create",
            target_type="CustomFieldDefinition",
            target_id=definition.id,
            target_label=key,
            after=_snapshot(definition),
        )
    return definition


async def update_definition(
    session: AsyncSession, *, actor: Actor, definition_id: int, changes: dict[str, Any]
) -> CustomFieldDefinition:
    """Change a definition's label, options, required flag or position (admins only).

    The key and type stay: values were checked against them. An option clients use stays too.
    """
    _require_admin(actor)
    definition = await session.get(CustomFieldDefinition, definition_id)
    if definition is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such custom field", ["id"])
    before = _snapshot(definition)
    checks = Checks()
    if "label" in changes:
        label = checks.run(text, changes["label"], field=["label"], maximum=200, required=True)
    if "options" in changes:
        options = check_options(definition.type, changes["options"], checks)
        removed = set(definition.options or []) - set(options or [])
        if removed:
            used = await _count_option_use(session, definition.id, removed)
            if used:
                checks.add(
                    ErrorCode.CUSTOM_FIELD_IN_USE,
                    f"{used} clients hold an option being removed: " + ", ".join(sorted(removed)),
                    ["options"],
                )
    checks.raise_if_any()
    async with transaction(session):
        if "label" in changes:
            definition.label = label  # type: ignore[assignment]
        if "options" in changes:
            definition.options = options
        if changes.get("required") is not None:
            definition.required = bool(changes["required"])
        if changes.get("position") is not None:
            definition.position = int(changes["position"])
        old, new = audit.changed(before, _snapshot(definition))
        if new:
            await audit.record(
                session,
                actor=actor,
                action="custom_field.update",
                target_type="CustomFieldDefinition",
                target_id=definition.id,
                target_label=definition.key,
                before=old,
                after=new,
            )
    return definition


async def _count_option_use(session: AsyncSession, definition_id: int, options: set[str]) -> int:
    """How many clients hold one of `options` (compared in Python: JSON differs by database)."""
    values = await session.scalars(
        select(CustomFieldValue.value).where(CustomFieldValue.definition_id == definition_id)
    )
    return sum(1 for value in values if value in options)


async def delete_definition(session: AsyncSession, *, actor: Actor, definition_id: int) -> None:
    """Remove a definition and every client's value for it (admins only; audited)."""
    _require_admin(actor)
    definition = await session.get(CustomFieldDefinition, definition_id)
    if definition is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such custom field", ["id"])
    async with transaction(session):
        values = await session.scalar(
            select(func.count())
            .select_from(CustomFieldValue)
            .where(CustomFieldValue.definition_id == definition_id)
        )
        await audit.record(
            session,
            actor=actor,
            action="custom_field.delete",
            target_type="CustomFieldDefinition",
            target_id=definition.id,
            target_label=definition.key,
            before={**_snapshot(definition), "values_removed": values},
        )
        await session.delete(definition)
