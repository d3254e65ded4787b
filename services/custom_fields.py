"""Custom client fields: definitions admins manage, and values checked against them."""

import math
import re
from datetime import date
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import CustomFieldType
from db.models import CustomFieldDefinition, CustomFieldValue
from db.session import transaction
from services import audit
from services.actors import Actor
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied
from services.validation import Checks, column_length, text

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_KEY = column_length(CustomFieldDefinition.key)
MAX_LABEL = column_length(CustomFieldDefinition.label)
MAX_OPTIONS = 100
MAX_OPTION = 100
MAX_TEXT = 1000
# NUMBER values: JSON numbers within +-10^15, so that every integer among them is exact in
# any client's double (JavaScript's safe integers end near 9 * 10^15) and in every database.
MAX_NUMBER = 10**15
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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
        return text(value, field=field, maximum=MAX_TEXT)
    if kind is CustomFieldType.NUMBER:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise invalid("a number")
        if abs(value) > MAX_NUMBER:
            raise DomainError(
                ErrorCode.OUT_OF_RANGE, f"{definition.label} takes numbers within ±10^15", field
            )
        return value
    if kind is CustomFieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise invalid("true or false")
        return value
    if kind is CustomFieldType.DATE:
        if not isinstance(value, str) or not DATE_PATTERN.fullmatch(value):
            raise invalid("a date written YYYY-MM-DD")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise invalid("a real calendar date") from None
    if not isinstance(value, str) or value not in (definition.options or []):
        raise invalid("one of: " + ", ".join(definition.options or []))
    return value


def readable_value(definition: Any, value: Any) -> Any:
    """A stored value as reads show it. One the field's type does not take (written around
    the rules, or before they were this strict) reads as None, with a warning in the log:
    a bad value must not break every read of the client."""
    if value is None:
        return None
    try:
        return check_value(definition, value, field=["value"])
    except DomainError as error:
        structlog.get_logger("clientdesk.custom_fields").warning(
            "custom_field_value_unreadable",
            definition_id=definition.id,
            key=definition.key,
            problem=error.message,
        )
        return None


def check_options(
    type_: CustomFieldType, options: list[str] | None, checks: Checks
) -> list[str] | None:
    """SELECT fields need 1-100 distinct, non-empty options of at most 100 characters; other
    types take none."""
    if type_ is not CustomFieldType.SELECT:
        if options:
            checks.add(ErrorCode.INVALID, "Only SELECT fields have options", ["options"])
        return None
    given = options or []
    if not given:
        checks.add(ErrorCode.REQUIRED, "A SELECT field needs options", ["options"])
        return []
    if len(given) > MAX_OPTIONS:
        checks.add(ErrorCode.TOO_MANY, f"At most {MAX_OPTIONS} options", ["options"])
        return []
    cleaned = [
        checks.run(text, option, field=["options", str(n)], maximum=MAX_OPTION, required=True)
        for n, option in enumerate(given)
    ]
    kept = [option for option in cleaned if option is not None]
    if len(kept) == len(cleaned) and len(set(kept)) != len(kept):
        checks.add(ErrorCode.INVALID, "Options must be distinct", ["options"])
    return kept


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
    if len(key) > MAX_KEY:
        checks.add(ErrorCode.TOO_LONG, f"At most {MAX_KEY} characters", ["key"])
    elif not KEY_PATTERN.fullmatch(key):
        checks.add(
            ErrorCode.INVALID,
            "A key is a lower-case letter, then up to 63 of a-z, 0-9 and '_'",
            ["key"],
        )
    elif await session.scalar(
        select(CustomFieldDefinition.id).where(CustomFieldDefinition.key == key)
    ):
        checks.add(ErrorCode.DUPLICATE, f"A field with key {key!r} exists", ["key"])
    cleaned_label = checks.run(text, label, field=["label"], maximum=MAX_LABEL, required=True)
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
        label = checks.run(
            text, changes["label"], field=["label"], maximum=MAX_LABEL, required=True
        )
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
