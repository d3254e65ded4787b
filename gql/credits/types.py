"""GraphQL types for the credit ledger."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.queries import AnyRow
from gql.context import Info
from gql.enums import EntryKind, PaymentMethod, Scope
from gql.loaders import now_or_later
from gql.node import Node, register_node, to_global_id
from gql.permissions import HasScope
from gql.pricing.types import Package
from gql.scalars import Money
from gql.staff.types import StaffUser
from services.ledger import PostedEntry

if TYPE_CHECKING:
    from gql.clients.types import Client


@strawberry.type(description="A line of a credit note; negative when a package is taken back.")
class CreditNoteLine:
    description: str = strawberry.field(description="What the line is for.")
    quantity: int = strawberry.field(description="How many units.")
    unit_amount: Money = strawberry.field(description="Price of one unit (may be negative).")
    amount: Money = strawberry.field(description="quantity * unitAmount.")
    package_id: strawberry.Private[int | None]

    @strawberry.field(description="The package the line is for, if any.")
    async def package(self, info: Info) -> Package | None:
        if self.package_id is None:
            return None
        row = await info.context.loaders.package_by_id.load(self.package_id)
        return Package.from_row(row) if row is not None else None


@strawberry.type(description="One immutable entry of a client's credit ledger.")
class CreditEntry(Node):
    kind: EntryKind = strawberry.field(description="What moved the money.")
    amount: Money = strawberry.field(description="Signed: positive adds to the balance.")
    balance_after: Money = strawberry.field(description="The client's balance after this entry.")
    payment_method: PaymentMethod | None = strawberry.field(
        description="For payments: how it was paid."
    )
    payment_reference: str | None = strawberry.field(
        description="For payments: the bank or processor reference."
    )
    comment: str | None = strawberry.field(description="Note by the staff user, or the reason.")
    valid_till_set: datetime | None = strawberry.field(
        description="For payments that paid for access: the client's validTill they set; for "
        "a reversal of such a payment: the validTill it moved back to."
    )
    created_at: datetime = strawberry.field(description="When the entry was made.")
    pk: strawberry.Private[int]
    client_id: strawberry.Private[int]
    created_by_id: strawberry.Private[int | None]
    reverses_id: strawberry.Private[int | None]
    currency: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: "AnyRow | PostedEntry") -> "CreditEntry":
        return cls(
            id=to_global_id("CreditEntry", row.id),
            kind=row.kind,
            amount=Money.of(row.amount, row.currency),
            balance_after=Money.of(row.balance_after, row.currency),
            payment_method=row.payment_method,
            payment_reference=row.payment_reference,
            comment=row.comment,
            valid_till_set=row.valid_till_set,
            created_at=row.created_at,
            pk=row.id,
            client_id=row.client_id,
            created_by_id=row.created_by_id,
            reverses_id=row.reverses_id,
            currency=row.currency,
        )

    @strawberry.field(
        description="The client whose ledger this is (null, with an error, without clients:read).",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def client(
        self, info: Info
    ) -> Annotated["Client", strawberry.lazy("gql.clients.types")] | None:
        from gql.clients.types import client_from_row

        row = await info.context.loaders.client_by_id.load(self.client_id)
        return client_from_row(info, row) if row is not None else None

    @strawberry.field(description="Who made the entry; null if that user was removed.")
    def created_by(self, info: Info) -> StaffUser | None:
        if self.created_by_id is None:
            return None
        loader = info.context.loaders.staff_user_by_id
        return now_or_later(loader, self.created_by_id, StaffUser.from_optional_row)  # type: ignore[no-any-return]

    @strawberry.field(description="For a reversal: the entry it undoes.")
    async def reverses(self, info: Info) -> "CreditEntry | None":
        if self.reverses_id is None:
            return None
        row = await info.context.loaders.credit_entry_by_id.load(self.reverses_id)
        return CreditEntry.from_row(row) if row is not None else None

    @strawberry.field(description="The reversal that undid this entry, if any.")
    async def reversed_by(self, info: Info) -> "CreditEntry | None":
        row = await info.context.loaders.reversal_by_entry_id.load(self.pk)
        return CreditEntry.from_row(row) if row is not None else None

    @strawberry.field(description="For a credit note: its lines, in order; empty otherwise.")
    async def lines(self, info: Info) -> list[CreditNoteLine]:
        if self.kind is not EntryKind.CREDIT_NOTE:
            return []
        rows = await info.context.loaders.credit_note_lines_by_entry_id.load(self.pk)
        return [
            CreditNoteLine(
                description=row.description,
                quantity=row.quantity,
                unit_amount=Money.of(row.unit_amount, self.currency),
                amount=Money.of(row.amount, self.currency),
                package_id=row.package_id,
            )
            for row in rows
        ]


async def fetch_credit_entries(info: Info, ids: Sequence[int]) -> list[CreditEntry | None]:
    """Ledger entries by primary key; None for each without the clients:read scope."""
    viewer = info.context.viewer
    if viewer is None or not viewer.has_scope(Scope.CLIENTS_READ):
        return [None] * len(ids)
    rows = await info.context.loaders.credit_entry_by_id.load_many(list(ids))
    return [CreditEntry.from_row(row) if row is not None else None for row in rows]


register_node("CreditEntry", fetch_credit_entries)
