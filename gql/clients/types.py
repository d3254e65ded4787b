"""GraphQL types for clients."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from sqlalchemy import Row

from db import enums
from db.enums import Scope
from gql.context import Info
from gql.node import Node, register_node, to_global_id
from gql.scalars import Money
from gql.staff.types import StaffUser

ClientStatus = enums.ClientStatus
strawberry.enum(
    ClientStatus,
    description="ACTIVE: access enabled, the client can log in. INACTIVE: access disabled.",
)


@strawberry.type(description="A temporary restriction, separate from the client's status.")
class ClientBlock:
    reason: str = strawberry.field(description="Why the client was blocked.")
    blocked_at: datetime = strawberry.field(description="When the block started.")
    blocked_until: datetime | None = strawberry.field(
        description="When the block ends by itself; null until someone unblocks the client."
    )
    blocked_by_id: strawberry.Private[int | None]

    @strawberry.field(description="Who blocked the client; null if that user was removed.")
    async def blocked_by(self, info: Info) -> StaffUser | None:
        if self.blocked_by_id is None:
            return None
        row = await info.context.loaders.staff_user_by_id.load(self.blocked_by_id)
        return StaffUser.from_row(row) if row is not None else None


def active_block(row: Row[Any], now: datetime) -> ClientBlock | None:
    """The client's block if one is in force at `now` (an expired block is no block)."""
    if row.blocked_at is None or (row.blocked_until is not None and row.blocked_until <= now):
        return None
    return ClientBlock(
        reason=row.block_reason,
        blocked_at=row.blocked_at,
        blocked_until=row.blocked_until,
        blocked_by_id=row.blocked_by_id,
    )


@strawberry.type(description="A customer account.")
class Client(Node):
    login: str = strawberry.field(
        description="Unique sign-in name, lower case: 3 to 64 of a-z, 0-9, '.', '_' and '-'."
    )
    name: str | None = strawberry.field(description="Display name (person or company).")
    email: str | None = strawberry.field(description="Contact e-mail address.")
    phone: str | None = strawberry.field(description="Contact phone in E.164, e.g. +4915112345678.")
    country: str | None = strawberry.field(description='ISO 3166-1 alpha-2 code, e.g. "DE".')
    currency: str = strawberry.field(
        description="ISO 4217 code of the account's money; amounts use its minor units."
    )
    language: str | None = strawberry.field(description="Preferred language, a BCP 47 tag.")
    status: ClientStatus = strawberry.field(description="Whether access is enabled.")
    blocked: bool = strawberry.field(
        description="Whether a block is in force now (an expired block does not count)."
    )
    block: ClientBlock | None = strawberry.field(description="The block in force now, or null.")
    can_login: bool = strawberry.field(
        description="ACTIVE, not blocked, and paid access (validTill) not over: the client "
        "can sign in to their cabinet now."
    )
    balance: Money = strawberry.field(
        description="The sum of the client's credit ledger; negative when in debt."
    )
    credit_limit: Money = strawberry.field(description="How far the balance may go below zero.")
    valid_till: datetime | None = strawberry.field(
        description="Billing mode: when paid access ends; null for no end."
    )
    moderation: bool = strawberry.field(description="Whether the client's traffic is moderated.")
    avatar_url: str | None = strawberry.field(description="Avatar image; null for the default.")
    price_adjustment_percent: Decimal = strawberry.field(
        description="Custom increase (+) or decrease (-) applied to every package price, "
        "in percent with two decimals."
    )
    last_activity_at: datetime | None = strawberry.field(
        description="When the client was last active; null if never."
    )
    chats_count: int = strawberry.field(description="Live chat conversations so far.")
    support_requests_count: int = strawberry.field(description="Support tickets so far.")
    created_at: datetime = strawberry.field(description="When the account was created.")
    updated_at: datetime = strawberry.field(description="When the account last changed.")

    pk: strawberry.Private[int]
    manager_id: strawberry.Private[int | None]
    parent_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: Row[Any], now: datetime) -> "Client":
        block = active_block(row, now)
        status = row.status
        return cls(
            id=to_global_id("Client", row.id),
            login=row.login,
            name=row.name,
            email=row.email,
            phone=row.phone,
            country=row.country,
            currency=row.currency,
            language=row.language,
            status=status,
            blocked=block is not None,
            block=block,
            can_login=status is enums.ClientStatus.ACTIVE
            and block is None
            and (row.valid_till is None or row.valid_till > now),
            balance=Money.of(row.balance, row.currency),
            credit_limit=Money.of(row.credit_limit, row.currency),
            valid_till=row.valid_till,
            moderation=row.moderation,
            avatar_url=row.avatar_url,
            price_adjustment_percent=row.price_adjustment_percent,
            last_activity_at=row.last_activity_at,
            chats_count=row.chats_count,
            support_requests_count=row.support_requests_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
            manager_id=row.manager_id,
            parent_id=row.parent_id,
        )

    @strawberry.field(description="The account manager responsible for the client, if any.")
    async def manager(self, info: Info) -> StaffUser | None:
        if self.manager_id is None:
            return None
        row = await info.context.loaders.staff_user_by_id.load(self.manager_id)
        return StaffUser.from_row(row) if row is not None else None

    @strawberry.field(description="The client this one is a sub-account of, if any.")
    async def parent(self, info: Info) -> "Client | None":
        if self.parent_id is None:
            return None
        row = await info.context.loaders.client_by_id.load(self.parent_id)
        return Client.from_row(row, info.context.now) if row is not None else None


def can_read_clients(info: Info) -> bool:
    viewer = info.context.viewer
    return viewer is not None and viewer.has_scope(Scope.CLIENTS_READ)


async def fetch_clients(info: Info, ids: Sequence[int]) -> list[Client | None]:
    """Clients by primary key, or None for each when the token may not read clients."""
    if not can_read_clients(info):
        return [None] * len(ids)
    rows = await info.context.loaders.client_by_id.load_many(list(ids))
    return [Client.from_row(row, info.context.now) if row is not None else None for row in rows]


register_node("Client", fetch_clients)
