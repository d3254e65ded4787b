"""Queries about packages."""

from typing import Annotated

import strawberry
from sqlalchemy import select

from db.models import Package as PackageModel
from gql.context import Info
from gql.permissions import IsAuthenticated
from gql.pricing.types import Package


@strawberry.type
class PricingQuery:
    @strawberry.field(description="Packages, by name.", permission_classes=[IsAuthenticated])
    async def packages(
        self,
        info: Info,
        include_inactive: Annotated[
            bool, strawberry.argument(description="Also packages no longer on sale.")
        ] = False,
    ) -> list[Package]:
        query = select(PackageModel.__table__).order_by(PackageModel.name)
        if not include_inactive:
            query = query.where(PackageModel.is_active.is_(True))
        return [Package.from_row(row) for row in await info.context.db.rows(query)]
