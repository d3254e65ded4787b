"""Staff users: the admins and account managers who use the back office."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import StaffRole
from db.models import StaffUser
from services.auth import hash_password_async
from services.errors import DomainError, ErrorCode
from services.passwords import check_password_async
from services.validation import column_length, normalize_email, text


async def create_staff(
    session: AsyncSession, *, email: str, name: str, role: StaffRole, password: str | None
) -> StaffUser:
    """Add a staff user (a password is optional: token-only users have none)."""
    email = normalize_email(email, field=["email"]).lower()
    name = text(name, field=["name"], maximum=column_length(StaffUser.name), required=True) or ""
    taken = await session.scalar(select(StaffUser.id).where(StaffUser.email == email))
    if taken is not None:
        raise DomainError(ErrorCode.INVALID, f"{email} is already a staff user", ["email"])
    password_hash = None
    if password:
        await check_password_async(password, field=["password"], user_inputs=[email, name])
        password_hash = await hash_password_async(password)
    staff = StaffUser(email=email, name=name, role=role, password_hash=password_hash)
    session.add(staff)
    await session.flush()
    return staff


async def get_staff_by_email(session: AsyncSession, *, email: str) -> StaffUser:
    """The staff user with this e-mail address."""
    staff = await session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if staff is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"No staff user {email}", ["email"])
    return staff
