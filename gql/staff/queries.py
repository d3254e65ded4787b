"""Queries about staff users and the viewer."""

import strawberry

from gql.context import Info
from gql.permissions import IsAuthenticated
from gql.staff.types import Viewer


@strawberry.type
class StaffQuery:
    @strawberry.field(
        description="The staff user whose token is in use, and what the token may do.",
        permission_classes=[IsAuthenticated],
    )
    def viewer(self, info: Info) -> Viewer:
        assert info.context.viewer is not None  # IsAuthenticated
        return Viewer.from_model(info.context.viewer)
