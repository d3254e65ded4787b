"""Changing prices: packages (admins) and per-client adjustments."""

from decimal import Decimal
from typing import Annotated

import strawberry

from db.enums import Scope
from gql.arguments import kept_when_left_out
from gql.clients.mutations import (
    ClientPayload,
    ExpectedVersionArg,
    client_payload,
    client_pk,
    shown_pk,
)
from gql.context import Info
from gql.errors import UserError, attempt
from gql.node import pk_of
from gql.permissions import AdminsOnly, HasScope
from gql.pricing.types import Package
from services import pricing


@strawberry.input(description="A package's base price in one currency.")
class PriceInput:
    currency: str = strawberry.field(description="ISO 4217 code.")
    amount: Decimal = strawberry.field(description="Zero or more, in that currency's minor units.")


@strawberry.input(description="A new price-list item.")
class PackageCreateInput:
    name: str = strawberry.field(description="Unique name.")
    description: str | None = strawberry.field(default=None, description="What it contains.")
    prices: list[PriceInput] = strawberry.field(description="Base prices, one per currency.")
    is_active: bool = strawberry.field(default=True, description="On sale.")


@strawberry.input(description="Changes to a package; fields left out stay as they are.")
class PackageUpdateInput:
    name: strawberry.Maybe[str | None] = kept_when_left_out("New name.")
    description: strawberry.Maybe[str | None] = strawberry.field(default=None, description="About.")
    prices: strawberry.Maybe[list[PriceInput] | None] = kept_when_left_out(
        "All base prices (replaces the list)."
    )
    is_active: strawberry.Maybe[bool | None] = kept_when_left_out("On sale.")


@strawberry.type(description="The result of a change to a package.")
class PackagePayload:
    package: Package | None = strawberry.field(description="The package now; null if refused.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


async def package_payload(
    info: Info, package_id: int | None, errors: list[UserError]
) -> PackagePayload:
    if package_id is None:
        return PackagePayload(package=None, user_errors=errors)
    row = await info.context.loaders.package_by_id.load(package_id)
    return PackagePayload(package=Package.from_row(row) if row else None, user_errors=errors)


PRICING = [HasScope(Scope.PRICING_WRITE)]


@strawberry.type
class PricingMutation:
    @strawberry.mutation(
        description="Set a client's custom increase (+) or decrease (-) of every package price, "
        "in percent: above -100, at most 1000, two decimals.",
        permission_classes=PRICING,
    )
    async def client_price_adjustment_set(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The client.")],
        percent: Annotated[Decimal, strawberry.argument(description='e.g. "-12.50".')],
        expected_version: ExpectedVersionArg = None,
    ) -> ClientPayload:
        pk = client_pk(id)
        client, errors = await attempt(
            info,
            pricing.set_price_adjustment,
            prefix=(),
            client_id=pk,
            percent=percent,
            expected_version=expected_version,
        )
        return await client_payload(info, shown_pk(client, pk, errors), errors)

    @strawberry.mutation(
        description="Add a package to the price list (admins).",
        permission_classes=[*PRICING, AdminsOnly],
    )
    async def package_create(
        self,
        info: Info,
        input: Annotated[PackageCreateInput, strawberry.argument(description="The package.")],
    ) -> PackagePayload:
        package, errors = await attempt(
            info,
            pricing.create_package,
            name=input.name,
            description=input.description,
            prices=[(p.currency, p.amount) for p in input.prices],
            is_active=input.is_active,
        )
        return await package_payload(info, package.id if package else None, errors)

    @strawberry.mutation(
        description="Change a package (admins).", permission_classes=[*PRICING, AdminsOnly]
    )
    async def package_update(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The package.")],
        input: Annotated[PackageUpdateInput, strawberry.argument(description="The changes.")],
    ) -> PackagePayload:
        changes = {
            name: getattr(input, name).value
            for name in ("name", "description", "is_active")
            if getattr(input, name) is not None
        }
        if input.prices is not None:  # never null here: gql/arguments.py refused that
            changes["prices"] = [(p.currency, p.amount) for p in input.prices.value or ()]
        package, errors = await attempt(
            info,
            pricing.update_package,
            paths={"id": ("id",)},
            package_id=pk_of(id, "Package") or 0,
            changes=changes,
        )
        return await package_payload(info, package.id if package else None, errors)
