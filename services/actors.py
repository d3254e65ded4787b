"""Who is acting, when, and in which request: what every change records."""

from dataclasses import dataclass
from datetime import datetime

from db.enums import StaffRole
from services.auth import Viewer


@dataclass(frozen=True, slots=True)
class Actor:
    """The staff user making a change, the time it happens, and the request it came with."""

    staff_id: int
    email: str
    role: StaffRole
    now: datetime
    request_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is StaffRole.ADMIN

    @classmethod
    def of(cls, viewer: Viewer, *, now: datetime, request_id: str | None) -> "Actor":
        return cls(viewer.staff_id, viewer.email, viewer.role, now, request_id)
