"""The payment batch service without GraphQL: rows answered on their own, balances chained in
input order, keys replayed, and a key past its 24 hours free again."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import PaymentMethod, StaffRole
from db.models import Client, CreditEntry
from services import idempotency
from services.actors import Actor
from services.errors import DomainError, ErrorCode
from services.payment_batches import BatchPayment, add_payments
from tests.conftest import FakeClock
from tests.factories import Factory


def pay(client_id: int, amount: str, key: str) -> BatchPayment:
    return BatchPayment(client_id, Decimal(amount), PaymentMethod.BANK_TRANSFER, key)


async def balance_and_sum(session: AsyncSession, client_id: int) -> tuple[Decimal, Decimal]:
    balance = await session.scalar(
        select(Client.balance)
        .where(Client.id == client_id)
        .execution_options(populate_existing=True)
    )
    total = await session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
            CreditEntry.client_id == client_id
        )
    )
    assert balance is not None
    return Decimal(balance), Decimal(total)


async def test_rows_chain_replay_and_expire(
    session: AsyncSession, factory: Factory, clock: FakeClock
) -> None:
    staff = await factory.staff(role=StaffRole.ADMIN)
    actor = Actor(staff.id, staff.email, staff.role, clock())
    client = await factory.client(currency="EUR")
    batch = [pay(client.id, "1", "a"), pay(client.id, "0.001", "b"), pay(client.id, "2", "c")]
    # when a batch is posted
    results = await add_payments(session, actor=actor, payments=batch)
    # then the good rows chain, the bad one is refused on its own field
    entries = [r.posted.entry for r in results if r.posted is not None]
    assert [e.balance_after for e in entries if e is not None] == [Decimal(1), Decimal(3)]
    assert [(e.code, e.field) for e in results[1].errors] == [
        (ErrorCode.INVALID_AMOUNT_PRECISION, ["payments", "1", "amount"])
    ]
    assert await balance_and_sum(session, client.id) == (Decimal(3), Decimal(3))
    # and posted again, it replays the same entries
    again = await add_payments(session, actor=actor, payments=batch)
    assert [r.posted.entry_id if r.posted else None for r in again] == [
        r.posted.entry_id if r.posted else None for r in results
    ]
    assert all(r.posted.replayed for r in again if r.posted is not None)
    # and once the keys expired, the same batch is new payments
    later = Actor(staff.id, staff.email, staff.role, clock() + idempotency.KEEP_FOR)
    fresh = await add_payments(session, actor=later, payments=batch)
    assert [r.posted.replayed for r in fresh if r.posted is not None] == [False, False]
    assert await balance_and_sum(session, client.id) == (Decimal(6), Decimal(6))


@pytest.mark.parametrize(("count", "code"), [(0, ErrorCode.REQUIRED), (1001, ErrorCode.TOO_MANY)])
async def test_the_size_is_checked_first(
    session: AsyncSession, factory: Factory, clock: FakeClock, count: int, code: ErrorCode
) -> None:
    staff = await factory.staff(role=StaffRole.ADMIN)
    actor = Actor(staff.id, staff.email, staff.role, clock())
    with pytest.raises(DomainError) as refused:
        await add_payments(session, actor=actor, payments=[pay(1, "1", "k")] * count)
    assert (refused.value.code, refused.value.field) == (code, ["payments"])
