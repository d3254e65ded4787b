"""Concurrent money mutations over separate connections, through the whole stack, really
committing: the balance never overdraws, and an idempotency key applies once."""

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from clientdesk.settings import Settings
from db.enums import PaymentMethod
from db.models import Client, CreditEntry, StaffUser
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from services import ledger
from services.actors import Actor
from tests.servers import seed_admin_and_client

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DEDUCT = """
mutation($input: CreditDeductInput!) {
  creditDeduct(input: $input) { entry { id } replayed userErrors { code } }
}
"""
ADD = """
mutation($input: CreditAddInput!) {
  creditAdd(input: $input) { entry { id } replayed userErrors { code } }
}
"""


@dataclass
class Stack:
    url: str
    token: str
    client_id: int
    http: httpx.AsyncClient


@pytest.fixture
async def stack(scratch_url: str) -> AsyncIterator[Stack]:
    """A committing database with an admin, a token, and a EUR client holding 200.00."""
    seeded = await seed_admin_and_client(scratch_url)
    engine = create_engine(scratch_url, pool_size=20, max_overflow=30)
    async with create_sessionmaker(engine)() as session:
        admin = await session.get(StaffUser, seeded.admin_id)
        assert admin is not None
        actor = Actor(admin.id, admin.email, admin.role, NOW)
        await ledger.add_credit(
            session,
            actor=actor,
            client_id=seeded.client_id,
            amount=Decimal("200.00"),
            payment_method=PaymentMethod.CASH,
        )
    token, client_id = seeded.tokens[0], seeded.client_id
    app = create_app(Settings(database_url=scratch_url), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stack.test") as http:
        yield Stack(scratch_url, token, client_id, http)
    await engine.dispose()


async def call(stack: Stack, query: str, input_: dict[str, Any]) -> dict[str, Any]:
    response = await stack.http.post(
        "/graphql",
        json={"query": query, "variables": {"input": input_}},
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))  # type: ignore[no-any-return]


async def ledger_state(url: str, client_id: int) -> tuple[Decimal, Decimal, int]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        balance = await connection.scalar(select(Client.balance).where(Client.id == client_id))
        total, count = (
            await connection.execute(
                select(func.coalesce(func.sum(CreditEntry.amount), 0), func.count()).where(
                    CreditEntry.client_id == client_id
                )
            )
        ).one()
    await engine.dispose()
    return balance, Decimal(total), count


async def test_fifty_concurrent_deductions_where_only_twenty_fit(stack: Stack) -> None:
    # given 200.00 and no credit, when 50 deductions of 10.00 arrive at once
    client = base64.b64encode(f"Client:{stack.client_id}".encode()).decode()
    results = await asyncio.gather(
        *(
            call(stack, DEDUCT, {"clientId": client, "amount": "10.00", "reason": f"usage {n}"})
            for n in range(50)
        )
    )
    # then exactly 20 succeed and 30 are refused for the credit limit
    succeeded = [r for r in results if not r["userErrors"]]
    refused = [r for r in results if r["userErrors"]]
    assert len(succeeded) == 20
    assert {e["code"] for r in refused for e in r["userErrors"]} == {"CREDIT_LIMIT_EXCEEDED"}
    # and the balance is zero and matches the ledger (the payment and 20 deductions)
    balance, total, entries = await ledger_state(stack.url, stack.client_id)
    assert (balance, total, entries) == (Decimal(0), Decimal(0), 21)


async def test_two_concurrent_calls_with_one_key_apply_once(stack: Stack) -> None:
    client = base64.b64encode(f"Client:{stack.client_id}".encode()).decode()
    request = {
        "clientId": client,
        "amount": "5.00",
        "paymentMethod": "CARD",
        "idempotencyKey": "k-1",
    }
    first, second = await asyncio.gather(call(stack, ADD, request), call(stack, ADD, request))
    assert first["userErrors"] == second["userErrors"] == []
    assert first["entry"]["id"] == second["entry"]["id"]
    assert sorted([first["replayed"], second["replayed"]]) == [False, True]
    balance, total, entries = await ledger_state(stack.url, stack.client_id)
    assert (balance, total, entries) == (Decimal("205.00"), Decimal("205.00"), 2)
