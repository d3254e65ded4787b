"""Rows for tests, written through the session under test (rolled back afterwards)."""

from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import Scope, StaffRole, TokenKind
from db.models import Client, StaffUser
from services.auth import hash_password, issue_token


class Clock(Protocol):
    def __call__(self) -> datetime: ...


_numbers = count(1)


class Factory:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    async def staff(
        self, *, role: StaffRole = StaffRole.ADMIN, password: str | None = None, **values: Any
    ) -> StaffUser:
        n = next(_numbers)
        staff = StaffUser(
            email=values.pop("email", f"staff{n}@clientdesk.test"),
            name=values.pop("name", f"Staff {n}"),
            role=role,
            password_hash=hash_password(password) if password else None,
            **values,
        )
        self.session.add(staff)
        await self.session.flush()
        return staff

    async def token(
        self,
        staff: StaffUser,
        *,
        scopes: set[Scope] | None = None,
        expires_at: datetime | None = None,
        trusted_documents_only: bool = False,
    ) -> str:
        issued = await issue_token(
            self.session,
            staff=staff,
            kind=TokenKind.API,
            name="test",
            now=self.clock(),
            scopes=frozenset(scopes) if scopes is not None else None,
            expires_at=expires_at,
            trusted_documents_only=trusted_documents_only,
        )
        await self.session.commit()
        return issued.token

    async def admin_token(self) -> str:
        return await self.token(await self.staff(role=StaffRole.ADMIN))

    async def client(self, **values: Any) -> Client:
        n = next(_numbers)
        now = self.clock()
        defaults: dict[str, Any] = {
            "login": f"client{n}",
            "password_hash": "not-a-real-hash",
            "name": f"Client {n}",
            "email": f"client{n}@example.com",
            "currency": "EUR",
            "balance": Decimal(0),
            "created_at": now,
            "updated_at": now,
        }
        client = Client(**{**defaults, **values})
        self.session.add(client)
        await self.session.flush()
        await self.session.commit()
        return client
