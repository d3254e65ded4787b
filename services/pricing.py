"""What a package costs a client: the base price adjusted by the client's percentage."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client, Package, PackagePrice
from db.session import transaction
from services import audit
from services.actors import Actor
from services.clients import check_percent, client_for_change
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied
from services.money import check_amount, round_half_up
from services.validation import Checks, column_length, normalize_currency, text

HUNDRED = Decimal(100)
MAX_NAME = column_length(Package.name)
MAX_DESCRIPTION = 2000  # a TEXT column: a bound on the work, not on the storage


def adjusted_price(base: Decimal, percent: Decimal, currency: str) -> Decimal:
    """base * (1 + percent / 100), rounded half-up to the currency's minor unit."""
    return round_half_up(base * (HUNDRED + percent) / HUNDRED, currency)


async def set_price_adjustment(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    percent: Decimal,
    expected_version: int | None = None,
) -> Client:
    """Set the client's increase (+) or decrease (-) of every package price (audited)."""
    client = await client_for_change(
        session, actor=actor, client_id=client_id, expected_version=expected_version
    )
    checked = check_percent(percent, field=["percent"])
    async with transaction(session):
        if checked != client.price_adjustment_percent:
            await audit.record(
                session,
                actor=actor,
                action="client.price_adjustment",
                target_type="Client",
                target_id=client.id,
                target_label=client.login,
                before={"price_adjustment_percent": client.price_adjustment_percent},
                after={"price_adjustment_percent": checked},
            )
            client.price_adjustment_percent = checked
            client.updated_at = actor.now
    return client


def _check_prices(prices: Sequence[tuple[str, Decimal]], checks: Checks) -> dict[str, Decimal]:
    checked: dict[str, Decimal] = {}
    for n, (currency, amount) in enumerate(prices):
        code = checks.run(normalize_currency, currency, field=["prices", str(n), "currency"])
        if code is None:
            continue
        if code in checked:
            checks.add(
                ErrorCode.DUPLICATE, f"{code} is priced twice", ["prices", str(n), "currency"]
            )
            continue
        value = checks.run(check_amount, amount, code, field=["prices", str(n), "amount"])
        if value is not None and value < 0:
            checks.add(
                ErrorCode.INVALID_AMOUNT, "A price is zero or more", ["prices", str(n), "amount"]
            )
        elif value is not None:
            checked[code] = value
    return checked


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Only admins change the price list", Denial.ADMINS_ONLY)


async def create_package(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str,
    description: str | None,
    prices: Sequence[tuple[str, Decimal]],
    is_active: bool = True,
) -> Package:
    """Add a price-list item with a base price per currency (admins only)."""
    _require_admin(actor)
    checks = Checks()
    cleaned = checks.run(text, name, field=["name"], maximum=MAX_NAME, required=True)
    if cleaned and await session.scalar(select(Package.id).where(Package.name == cleaned)):
        checks.add(ErrorCode.DUPLICATE, f"A package named {cleaned!r} exists", ["name"])
    about = checks.run(text, description, field=["description"], maximum=MAX_DESCRIPTION)
    checked = _check_prices(prices, checks)
    checks.raise_if_any()
    async with transaction(session):
        package = Package(
            name=cleaned,
            description=about,
            is_active=is_active,
            created_at=actor.now,
            updated_at=actor.now,
        )
        session.add(package)
        await session.flush()
        session.add_all(
            PackagePrice(package_id=package.id, currency=code, amount=amount)
            for code, amount in checked.items()
        )
        await audit.record(
            session,
            actor=actor,
            action="package.create",
            target_type="Package",
            target_id=package.id,
            target_label=package.name,
            after={
                "name": package.name,
                "description": about,
                "is_active": is_active,
                "prices": checked,
            },
        )
    return package


async def update_package(
    session: AsyncSession, *, actor: Actor, package_id: int, changes: dict[str, Any]
) -> Package:
    """Rename, describe, (de)activate, or replace the prices of a package (admins only)."""
    _require_admin(actor)
    package = await session.get(Package, package_id, populate_existing=True)
    if package is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such package", ["id"])
    checks = Checks()
    if "name" in changes:
        name = checks.run(text, changes["name"], field=["name"], maximum=MAX_NAME, required=True)
        if (
            name
            and name != package.name
            and await session.scalar(select(Package.id).where(Package.name == name))
        ):
            checks.add(ErrorCode.DUPLICATE, f"A package named {name!r} exists", ["name"])
    if "description" in changes:
        about = checks.run(
            text, changes["description"], field=["description"], maximum=MAX_DESCRIPTION
        )
    checked = _check_prices(changes["prices"], checks) if "prices" in changes else None
    checks.raise_if_any()
    old_prices = {
        row.currency: row.amount
        for row in await session.scalars(
            select(PackagePrice).where(PackagePrice.package_id == package.id)
        )
    }
    before = {
        "name": package.name,
        "description": package.description,
        "is_active": package.is_active,
        "prices": old_prices,
    }
    async with transaction(session):
        if "name" in changes:
            package.name = name  # type: ignore[assignment]
        if "description" in changes:
            package.description = about
        if changes.get("is_active") is not None:
            package.is_active = bool(changes["is_active"])
        if checked is not None:
            await session.execute(delete(PackagePrice).where(PackagePrice.package_id == package.id))
            session.add_all(
                PackagePrice(package_id=package.id, currency=code, amount=amount)
                for code, amount in checked.items()
            )
        package.updated_at = actor.now
        after = {
            "name": package.name,
            "description": package.description,
            "is_active": package.is_active,
            "prices": checked if checked is not None else old_prices,
        }
        old, new = audit.changed(audit.json_safe(before), audit.json_safe(after))
        if new:
            await audit.record(
                session,
                actor=actor,
                action="package.update",
                target_type="Package",
                target_id=package.id,
                target_label=package.name,
                before=old,
                after=new,
            )
    return package
