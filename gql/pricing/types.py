"""GraphQL types for packages and prices."""

from collections.abc import Sequence
from decimal import Decimal

import strawberry

from db.queries import AnyRow
from gql.context import Info
from gql.node import Node, register_node, to_global_id
from gql.scalars import Money


@strawberry.type(description="A price-list item, with a base price per currency.")
class Package(Node):
    name: str = strawberry.field(description="Name, unique.")
    description: str | None = strawberry.field(description="What the package contains.")
    is_active: bool = strawberry.field(description="Whether it is on sale.")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: AnyRow) -> "Package":
        return cls(
            id=to_global_id("Package", row.id),
            name=row.name,
            description=row.description,
            is_active=row.is_active,
            pk=row.id,
        )

    @strawberry.field(description="Base prices, one per currency, by currency code.")
    async def prices(self, info: Info) -> list[Money]:
        rows = await info.context.loaders.package_prices_by_package_id.load(self.pk)
        return [Money.of(row.amount, row.currency) for row in rows]


@strawberry.type(description="What one package costs a client, in the client's currency.")
class ClientPackagePrice:
    package: Package = strawberry.field(description="The package.")
    base_price: Money = strawberry.field(description="The package's price in that currency.")
    price: Money = strawberry.field(
        description="The client's price: base * (1 + priceAdjustmentPercent / 100), rounded "
        "half-up to the currency's minor unit."
    )
    adjustment_percent: Decimal = strawberry.field(description="The adjustment applied.")


async def fetch_packages(info: Info, ids: Sequence[int]) -> list[Package | None]:
    """Packages by primary key; every authenticated viewer may see them."""
    rows = await info.context.loaders.package_by_id.load_many(list(ids))
    return [Package.from_row(row) if row is not None else None for row in rows]


register_node("Package", fetch_packages)
