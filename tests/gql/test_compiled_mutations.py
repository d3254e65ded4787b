"""The compiled money mutations answer exactly what graphql-core's executor answers, byte for
byte, and change the database exactly as it does: two databases seeded alike, one served by
each path, are sent the same requests and must give the same answers and end the same. What
the compiled path leaves to the executor runs there once, never twice."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from clientdesk.demo import DEMO_ADMIN_EMAIL, DEMO_MANAGER_EMAIL, seed_demo_data
from clientdesk.settings import Settings
from db.enums import TokenKind
from db.models import Client, CreditEntry, StaffUser
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from gql.compiled import CompiledOperations
from gql.node import to_global_id
from services.auth import issue_token
from tests.conftest import FakeClock, ScratchDatabases
from tests.gql.conftest import SEEDED_AT

ENTRY = """
  __typename replayed
  userErrors { __typename field code message }
  entry { __typename id kind amount { amount currency } balanceAfter { amount currency }
          paymentMethod paymentReference comment validTillSet createdAt }
"""
CLIENT = """
  client { id login balance { amount currency } validTill updatedAt canLogin
           manager { name } creditEntries(first: 3) { totalCount nodes { id amount { amount } } } }
"""
ADD = f"""
mutation Add($input: CreditAddInput!) {{ creditAdd(input: $input) {{ {ENTRY} {CLIENT} }} }}
"""
DEDUCT = f"""
mutation Deduct($input: CreditDeductInput!) {{ creditDeduct(input: $input) {{ {ENTRY} }} }}
"""
NOTE = f"""
mutation Note($input: CreditNoteCreateInput!) {{
  result: creditNoteCreate(input: $input) {{ ...Paid {CLIENT} }}
}}
fragment Paid on CreditEntryPayload {{ {ENTRY} }}
"""
REVERSE = f"""
mutation Reverse($id: ID!, $reason: String!, $key: String) {{
  creditEntryReverse(entryId: $id, reason: $reason, idempotencyKey: $key) {{ {ENTRY} }}
}}
"""


@dataclass
class Twins:
    """Two databases seeded alike: one app compiles, the other always runs the executor."""

    compiled: httpx.AsyncClient
    executor: httpx.AsyncClient
    operations: CompiledOperations
    tokens: dict[str, tuple[str, str]]  # by e-mail: (compiled's token, executor's)
    engines: list[Any]

    async def same(
        self,
        query: str,
        variables: dict[str, Any],
        *,
        who: str = DEMO_ADMIN_EMAIL,
        compiled: bool | None = True,
    ) -> dict[str, Any]:
        """Both answers, identical; and whether the compiled path gave its own (None: either;
        what is refused before anything runs may be left to the executor)."""
        answered = self.operations.answered
        body = {"query": query, "variables": variables}
        fast_token, slow_token = self.tokens[who]
        fast = await self.compiled.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {fast_token}"}
        )
        slow = await self.executor.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {slow_token}"}
        )
        assert fast.status_code == slow.status_code == 200
        assert fast.content == slow.content
        if compiled is not None:
            assert (self.operations.answered > answered) == compiled
        return fast.json()  # type: ignore[no-any-return]

    async def ledgers(self) -> list[list[tuple[Any, ...]]]:
        """Each database's ledger, balances and idempotency keys, for comparing."""
        found = []
        for engine in self.engines:
            async with engine.connect() as connection:
                rows = [
                    tuple(row)
                    for row in await connection.execute(
                        select(
                            CreditEntry.id,
                            CreditEntry.client_id,
                            CreditEntry.amount,
                            CreditEntry.balance_after,
                            CreditEntry.kind,
                        ).order_by(CreditEntry.id)
                    )
                ]
                rows += [
                    tuple(row)
                    for row in await connection.execute(
                        select(Client.id, Client.balance, Client.valid_till).order_by(Client.id)
                    )
                ]
                rows.append(
                    (await connection.scalar(text("SELECT count(*) FROM idempotency_keys")),)
                )
                rows.append((await connection.scalar(text("SELECT count(*) FROM audit_log")),))
            found.append(rows)
        return found


@pytest.fixture
async def twins(scratch: ScratchDatabases) -> AsyncIterator[Twins]:
    clients, engines, tokens, apps = [], [], {}, []
    for compiled in (True, False):
        engine = create_engine(await scratch.create())
        engines.append(engine)
        await seed_demo_data(engine, clients=40, seed=11, now=SEEDED_AT)
        async with create_sessionmaker(engine)() as session:
            for email in (DEMO_ADMIN_EMAIL, DEMO_MANAGER_EMAIL):
                staff = (
                    await session.execute(select(StaffUser).where(StaffUser.email == email))
                ).scalar_one()
                issued = await issue_token(
                    session, staff=staff, kind=TokenKind.API, name="tests", now=SEEDED_AT
                )
                tokens.setdefault(email, []).append(issued.token)
            await session.commit()
        settings = Settings(
            database_url=str(engine.url),
            log_format="console",
            rate_limit_points_per_minute=0,
            compiled_operations=compiled,
        )
        app = create_app(settings, engine=engine, clock=FakeClock(SEEDED_AT))
        apps.append(app)
        transport = httpx.ASGITransport(app=app)
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://twins.test"))
    yield Twins(
        clients[0],
        clients[1],
        apps[0].state.compiled,
        {email: (pair[0], pair[1]) for email, pair in tokens.items()},
        engines,
    )
    for client in clients:
        await client.aclose()
    for engine in engines:
        await engine.dispose()


async def client_ids(twins: Twins) -> list[str]:
    body = await twins.same(
        "query { clients(first: 40, filter: {statuses: [ACTIVE]}) { nodes { id } } }", {}
    )
    return [node["id"] for node in body["data"]["clients"]["nodes"]]


async def test_money_mutations_answer_and_write_as_the_executor(twins: Twins) -> None:
    ids = await client_ids(twins)
    first, second = ids[0], ids[1]
    # a payment, its replay, the key reused with another input
    pay = {
        "clientId": first,
        "amount": "25",
        "paymentMethod": "BANK_TRANSFER",
        "idempotencyKey": "k1",
    }
    paid = await twins.same(ADD, {"input": pay})
    assert paid["data"]["creditAdd"]["entry"]["amount"]["amount"].startswith("25")
    assert paid["data"]["creditAdd"]["client"]["creditEntries"]["totalCount"] >= 1
    replay = await twins.same(ADD, {"input": pay})
    assert replay["data"]["creditAdd"]["replayed"] is True
    await twins.same(ADD, {"input": {**pay, "amount": "26"}})
    # payments with every optional input, and without a key
    extended = {
        **pay,
        "idempotencyKey": None,
        "paymentReference": " ref-1 ",
        "comment": "a note",
        "validTill": "2027-01-01T00:00:00Z",
    }
    await twins.same(ADD, {"input": extended})
    # refusals in userErrors: amounts, texts, the validTill rule, a client that is not there
    for wrong in (
        {"amount": "0"},
        {"amount": "-5"},
        {"amount": "1.23456"},
        {"amount": "1e3"},
        {"comment": "x" * 5000},
        {"validTill": "2026-01-01T00:00:00Z"},
        {"clientId": "Q2xpZW50Ojk5OTk5"},
        {"clientId": "U3RhZmZVc2VyOjE="},
    ):
        body = await twins.same(
            ADD, {"input": {**pay, "idempotencyKey": None, **wrong}}, compiled=None
        )
        assert body["data"]["creditAdd"]["userErrors"]
    # deductions within and past the credit limit
    await twins.same(DEDUCT, {"input": {"clientId": second, "amount": "1", "reason": "fee"}})
    refused = await twins.same(
        DEDUCT, {"input": {"clientId": second, "amount": "999999999", "reason": "too much"}}
    )
    assert refused["data"]["creditDeduct"]["userErrors"][0]["code"] == "CREDIT_LIMIT_EXCEEDED"
    await twins.same(DEDUCT, {"input": {"clientId": second, "amount": "1", "reason": " "}})
    # a credit note with lines of both signs, through a fragment and an alias
    lines = [
        {"description": "hosting", "quantity": 2, "unitAmount": "3"},
        {"description": "refund", "quantity": -1, "unitAmount": "1"},
    ]
    note = await twins.same(NOTE, {"input": {"clientId": first, "lines": lines, "comment": "n"}})
    assert note["data"]["result"]["entry"]["kind"] == "CREDIT_NOTE"
    await twins.same(NOTE, {"input": {"clientId": first, "lines": []}})
    # a reversal, and the same entry reversed again
    entry = paid["data"]["creditAdd"]["entry"]["id"]
    await twins.same(REVERSE, {"id": entry, "reason": "wrong client", "key": "r1"})
    again = await twins.same(REVERSE, {"id": entry, "reason": "again"})
    assert again["data"]["creditEntryReverse"]["userErrors"][0]["code"] == "ALREADY_REVERSED"
    # and both databases hold the same ledger, balances, keys and audit trail
    compiled, executor = await twins.ledgers()
    assert compiled == executor


async def test_what_the_compiled_path_leaves_runs_once_on_the_executor(twins: Twins) -> None:
    ids = await client_ids(twins)
    pay = {"clientId": ids[0], "amount": "5", "paymentMethod": "CASH"}
    # arguments with problems (answered before anything runs), two mutations in one request,
    # a mutation beside a query field, a manager refused on a client not theirs
    unreadable = await twins.same(ADD, {"input": {**pay, "amount": "1e3"}}, compiled=False)
    assert unreadable["data"]["creditAdd"]["userErrors"][0]["field"] == ["input", "amount"]
    two = f"""mutation Two($input: CreditAddInput!) {{
      a: creditAdd(input: $input) {{ {ENTRY} }} b: creditAdd(input: $input) {{ {ENTRY} }} }}"""
    await twins.same(two, {"input": pay}, compiled=False)
    async with twins.engines[0].connect() as connection:
        manager_id = await connection.scalar(
            select(StaffUser.id).where(StaffUser.email == DEMO_MANAGER_EMAIL)
        )
        foreign = await connection.scalar(
            select(func.min(Client.id)).where(
                Client.manager_id.is_distinct_from(manager_id), Client.parent_id.is_(None)
            )
        )
    denied = await twins.same(
        ADD,
        {"input": {**pay, "clientId": to_global_id("Client", foreign)}},
        who=DEMO_MANAGER_EMAIL,
        compiled=False,
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    compiled, executor = await twins.ledgers()
    assert compiled == executor
