"""A hypothesis state machine over the ledger services: random sequences of payments,
deductions, credit notes, reversals and credit limit changes; after every step the stored
balance is the ledger's sum, matches a plain model, and never goes below -creditLimit."""

import asyncio
import itertools
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.enums import EntryKind, PaymentMethod, StaffRole
from db.models import Client, CreditEntry, StaffUser
from db.session import create_engine, create_sessionmaker
from services import clients, ledger
from services.actors import Actor
from services.errors import DomainError, ErrorCode, ValidationFailed

T = TypeVar("T")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
RUN_NUMBERS = itertools.count(1)
CENTS = st.integers(min_value=1, max_value=50_000).map(lambda cents: Decimal(cents).scaleb(-2))


class LoopThread:
    """An event loop in a thread of its own: hypothesis' state machines call rules synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def world(scratch_url: str) -> Iterator[tuple[LoopThread, async_sessionmaker[AsyncSession], Actor]]:
    runner = LoopThread()
    engine = runner.run(_engine(scratch_url))
    sessions = create_sessionmaker(engine)

    async def make_admin() -> Actor:
        async with sessions() as session:
            admin = StaffUser(email="admin@example.com", name="Admin", role=StaffRole.ADMIN)
            session.add(admin)
            await session.commit()
            return Actor(admin.id, admin.email, admin.role, NOW)

    actor = runner.run(make_admin())
    yield runner, sessions, actor
    runner.run(engine.dispose())
    runner.close()


async def _engine(url: str) -> Any:
    return create_engine(url)


def test_ledger_state_machine(
    world: tuple[LoopThread, async_sessionmaker[AsyncSession], Actor],
) -> None:
    runner, sessions, actor = world

    class Ledger(RuleBasedStateMachine):
        """One client per run; the model is its expected balance and limit."""

        @initialize(currency=st.sampled_from(["EUR", "KWD"]))
        def open_account(self, currency: str) -> None:
            self.currency = currency
            self.balance = Decimal(0)
            self.limit = Decimal(0)
            self.reversible: list[tuple[int, Decimal]] = []

            async def create() -> int:
                async with sessions() as session:
                    client = Client(
                        login=f"client{next(RUN_NUMBERS)}",
                        password_hash="x",
                        email="c@example.com",
                        currency=currency,
                        balance=Decimal(0),
                        credit_limit=Decimal(0),
                        created_at=NOW,
                        updated_at=NOW,
                    )
                    session.add(client)
                    await session.commit()
                    return client.id

            self.client_id = runner.run(create())

        def attempt(self, operation: Any, **arguments: Any) -> ledger.Posted | None:
            """The entry made, or None when refused for the credit limit (the only refusal)."""

            async def go() -> ledger.Posted | DomainError:
                async with sessions() as session:
                    try:
                        return await operation(session, actor=actor, **arguments)  # type: ignore[no-any-return]
                    except DomainError as error:
                        return error

            result = runner.run(go())
            if isinstance(result, DomainError):
                assert result.code is ErrorCode.CREDIT_LIMIT_EXCEEDED, result.message
                return None
            return result

        def expect(
            self, posted: ledger.Posted | None, amount: Decimal, reversible: bool = False
        ) -> None:
            if amount < 0 and self.balance + amount < -self.limit:
                assert posted is None  # refused, past the limit
                return
            assert posted is not None
            self.balance += amount
            if reversible:
                self.reversible.append((posted.entry_id, amount))

        @rule(amount=CENTS)
        def pay(self, amount: Decimal) -> None:
            posted = self.attempt(
                ledger.add_credit,
                client_id=self.client_id,
                amount=amount,
                payment_method=PaymentMethod.CARD,
            )
            self.expect(posted, amount, reversible=True)

        @rule(amount=CENTS)
        def deduct(self, amount: Decimal) -> None:
            posted = self.attempt(
                ledger.deduct, client_id=self.client_id, amount=amount, reason="use"
            )
            self.expect(posted, -amount, reversible=True)

        @rule(
            lines=st.lists(
                st.tuples(st.integers(-3, 3).filter(bool), CENTS, st.booleans()),
                min_size=1,
                max_size=4,
            )
        )
        def credit_note(self, lines: list[tuple[int, Decimal, bool]]) -> None:
            note = [
                ledger.NoteLine(
                    description="line", quantity=quantity, unit_amount=-unit if negative else unit
                )
                for quantity, unit, negative in lines
            ]
            total = sum((line.quantity * line.unit_amount for line in note), Decimal(0))  # type: ignore[operator]
            posted = self.attempt(ledger.create_credit_note, client_id=self.client_id, lines=note)
            self.expect(posted, total, reversible=total != 0)

        @precondition(lambda self: bool(self.reversible))
        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            entry_id, amount = data.draw(st.sampled_from(self.reversible))
            posted = self.attempt(ledger.reverse, entry_id=entry_id, reason="mistake")
            before = self.balance
            self.expect(posted, -amount)
            if self.balance != before:
                self.reversible.remove((entry_id, amount))

        @rule(limit=st.integers(0, 2_000).map(Decimal))
        def set_limit(self, limit: Decimal) -> None:
            async def go() -> list[ErrorCode]:
                async with sessions() as session:
                    try:
                        await clients.update_client(
                            session,
                            actor=actor,
                            client_id=self.client_id,
                            values={"credit_limit": limit},
                        )
                    except ValidationFailed as failed:
                        return [error.code for error in failed.errors]
                    return []

            refusals = runner.run(go())
            if self.balance + limit >= 0:
                assert refusals == []
                self.limit = limit
            else:
                assert refusals == [ErrorCode.CREDIT_LIMIT_BELOW_DEBT]

        @invariant()
        def balance_is_the_ledgers_sum(self) -> None:
            async def state() -> tuple[Decimal, Decimal, Decimal, Decimal | None]:
                async with sessions() as session:
                    client = (
                        await session.execute(
                            select(Client.balance, Client.credit_limit).where(
                                Client.id == self.client_id
                            )
                        )
                    ).one()
                    total = await session.scalar(
                        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
                            CreditEntry.client_id == self.client_id
                        )
                    )
                    last = await session.scalar(
                        select(CreditEntry.balance_after)
                        .where(CreditEntry.client_id == self.client_id)
                        .order_by(CreditEntry.id.desc())
                        .limit(1)
                    )
                    return client.balance, client.credit_limit, Decimal(total), last

            if not hasattr(self, "client_id"):
                return
            balance, limit, total, last = runner.run(state())
            assert balance == total == self.balance
            assert last is None or last == balance
            assert limit == self.limit
            assert balance >= -limit

        @invariant()
        def reversals_point_at_their_entries(self) -> None:
            async def orphans() -> int:
                async with sessions() as session:
                    return int(
                        await session.scalar(
                            select(func.count())
                            .select_from(CreditEntry)
                            .where(
                                CreditEntry.kind == EntryKind.REVERSAL,
                                CreditEntry.reverses_id.is_(None),
                            )
                        )
                        or 0
                    )

            assert runner.run(orphans()) == 0

    Ledger.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Ledger.TestCase().runTest()
