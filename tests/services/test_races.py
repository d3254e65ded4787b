"""Every pair of operations that touch the same client, run at the same moment, many rounds, over
separate connections that really commit, through the whole stack (HTTP → GraphQL → services):
after every round the ledger, currency, link and limit invariants hold, and every answer is data
or a documented userError code, never an INTERNAL_SERVER_ERROR.

A round makes fresh clients, lines both requests up on a barrier, sends them together and
checks the whole database. On SQLite changes take turns at the write lock; on PostgreSQL they
meet at row locks, which is where these rules were broken.
"""

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from clientdesk.settings import Settings
from db.enums import PaymentMethod
from db.models import Client, CreditEntry, DeletedClient, StaffUser
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from services import ledger
from services.actors import Actor
from tests.servers import seed_admin_and_client

ROUNDS = 20
NOW = datetime(2026, 6, 1, tzinfo=UTC)

ADD = """mutation($id: ID!, $amount: Decimal!) {
  creditAdd(input: {clientId: $id, amount: $amount, paymentMethod: CASH}) {
    entry { id } userErrors { code } } }"""
DEDUCT = """mutation($id: ID!, $amount: Decimal!) {
  creditDeduct(input: {clientId: $id, amount: $amount, reason: "usage"}) {
    entry { id } userErrors { code } } }"""
REVERSE = """mutation($entry: ID!) {
  creditEntryReverse(entryId: $entry, reason: "mistake") { entry { id } userErrors { code } } }"""
DELETE = """mutation($ids: [ID!]!) {
  clientsDelete(ids: $ids, confirm: true) { userErrors { code } } }"""
UPDATE = """mutation($id: ID!, $input: ClientUpdateInput!) {
  clientUpdate(id: $id, input: $input) { userErrors { code } } }"""
LINK = """mutation($parent: ID!, $child: ID!) {
  clientLink(parentId: $parent, childId: $child) { userErrors { code } } }"""
NOTE = """mutation($id: ID!) {
  creditNoteCreate(input: {clientId: $id, lines: [{description: "Setup", quantity: 1,
    unitAmount: "10.55"}]}) { entry { id } userErrors { code } } }"""
CREATE = """mutation($input: ClientCreateInput!) {
  clientCreate(input: $input) { client { id } userErrors { code } } }"""
STATUS = """mutation($ids: [ID!]!) {
  clientsSetStatus(ids: $ids, status: INACTIVE) { userErrors { code } } }"""
BLOCK = """mutation($id: ID!) {
  clientBlock(id: $id, reason: "unpaid invoice") { userErrors { code } } }"""


def gid(kind: str, pk: int) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


@dataclass
class Round:
    """The clients of one round: a parent-to-be, a child-to-be, and a payment of the parent."""

    parent: int
    child: int
    payment: int


@dataclass
class Op:
    """One side of a pair: a document, its variables for a round, and the codes it may answer."""

    document: str
    variables: Callable[[Round], dict[str, Any]]
    codes: frozenset[str]


def add(amount: str) -> Op:
    return Op(
        ADD,
        lambda r: {"id": gid("Client", r.parent), "amount": amount},
        _codes("NOT_FOUND", "INVALID_AMOUNT_PRECISION"),
    )


def deduct(amount: str) -> Op:
    return Op(
        DEDUCT,
        lambda r: {"id": gid("Client", r.parent), "amount": amount},
        _codes("NOT_FOUND", "CREDIT_LIMIT_EXCEEDED", "INVALID_AMOUNT_PRECISION"),
    )


def _codes(*codes: str) -> frozenset[str]:
    return frozenset({*codes, "CONFLICT"})


def update(input_: dict[str, Any], who: str = "parent") -> Op:
    return Op(
        UPDATE,
        lambda r: {"id": gid("Client", getattr(r, who)), "input": input_},
        _codes("NOT_FOUND", "CURRENCY_LOCKED", "CREDIT_LIMIT_BELOW_DEBT"),
    )


def delete(who: str) -> Op:
    return Op(
        DELETE,
        lambda r: {"ids": [gid("Client", getattr(r, who))]},
        _codes("NOT_FOUND", "HAS_BALANCE", "HAS_SUB_ACCOUNTS"),
    )


LINK_CODES = _codes(
    "NOT_FOUND",
    "CURRENCY_MISMATCH",
    "CYCLE",
    "ALREADY_LINKED",
    "PARENT_IS_SUB_ACCOUNT",
    "CHILD_HAS_SUB_ACCOUNTS",
)
LINK_OP = Op(
    LINK,
    lambda r: {"parent": gid("Client", r.parent), "child": gid("Client", r.child)},
    LINK_CODES,
)
LINK_BACK = Op(
    LINK,
    lambda r: {"parent": gid("Client", r.child), "child": gid("Client", r.parent)},
    LINK_CODES,
)
NOTE_OP = Op(
    NOTE,
    lambda r: {"id": gid("Client", r.parent)},
    _codes("NOT_FOUND", "INVALID_AMOUNT_PRECISION"),
)
CREATE_UNDER_PARENT = Op(
    CREATE,
    lambda r: {
        "input": {
            "login": f"kid{r.parent}",
            "password": "correct horse battery staple",
            "currency": "EUR",
            "email": f"kid{r.parent}@example.com",
            "parentId": gid("Client", r.parent),
        }
    },
    _codes("NOT_FOUND", "PARENT_INVALID"),
)
REVERSE_OP = Op(
    REVERSE,
    lambda r: {"entry": gid("CreditEntry", r.payment)},
    _codes("NOT_FOUND", "ALREADY_REVERSED", "CREDIT_LIMIT_EXCEEDED"),
)
STATUS_OP = Op(STATUS, lambda r: {"ids": [gid("Client", r.parent)]}, _codes("NOT_FOUND"))
BLOCK_OP = Op(BLOCK, lambda r: {"id": gid("Client", r.parent)}, _codes("NOT_FOUND"))

# (name, first, second, the parent's payment before the round, the parent's credit limit)
PAIRS = [
    ("money x delete", add("7.00"), delete("parent"), None, "0"),
    ("deduct x delete", deduct("5.00"), delete("parent"), "5.00", "0"),
    ("money x currency change", add("10.55"), update({"currency": "JPY"}), None, "0"),
    ("link x delete of the parent", LINK_OP, delete("parent"), None, "0"),
    ("link x delete of the child", LINK_OP, delete("child"), None, "0"),
    (
        "link x currency change of the child",
        LINK_OP,
        update({"currency": "USD"}, "child"),
        None,
        "0",
    ),
    ("link x currency change of the parent", LINK_OP, update({"currency": "USD"}), None, "0"),
    ("link x the opposite link", LINK_OP, LINK_BACK, None, "0"),
    ("new sub-account x delete of the parent", CREATE_UNDER_PARENT, delete("parent"), None, "0"),
    (
        "new sub-account x currency change of the parent",
        CREATE_UNDER_PARENT,
        update({"currency": "USD"}),
        None,
        "0",
    ),
    ("credit note x currency change", NOTE_OP, update({"currency": "JPY"}), None, "0"),
    (
        "credit limit change x deduct",
        deduct("60.00"),
        update({"creditLimit": "50.00"}),
        None,
        "100",
    ),
    ("reversal x reversal", REVERSE_OP, REVERSE_OP, "30.00", "0"),
    ("reversal x deduct", REVERSE_OP, deduct("20.00"), "30.00", "0"),
    ("status change x money", STATUS_OP, add("3.00"), None, "0"),
    ("block x deduct", BLOCK_OP, deduct("1.00"), "5.00", "0"),
    ("delete x delete", delete("parent"), delete("parent"), None, "0"),
]


@dataclass
class Stack:
    engine: AsyncEngine
    actor: Actor
    token: str
    http: httpx.AsyncClient
    acknowledged: set[int] = field(default_factory=set)


@pytest.fixture
async def stack(scratch_url: str) -> AsyncIterator[Stack]:
    seeded = await seed_admin_and_client(scratch_url)
    engine = create_engine(scratch_url, pool_size=10, max_overflow=10)
    async with create_sessionmaker(engine)() as session:
        admin = await session.get(StaffUser, seeded.admin_id)
        assert admin is not None
        actor = Actor(admin.id, admin.email, admin.role, NOW)
    app = create_app(Settings(database_url=scratch_url), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://races.test") as http:
        yield Stack(engine, actor, seeded.tokens[0], http)
    await engine.dispose()


async def new_round(stack: Stack, n: int, paid: str | None, limit: str) -> Round:
    """Two fresh EUR clients (the first with `limit` and, if given, a payment of `paid`)."""
    async with create_sessionmaker(stack.engine)() as session:
        clients = [
            Client(
                login=f"round{n}{side}",
                password_hash="x",
                email=f"round{n}{side}@example.com",
                currency="EUR",
                balance=Decimal(0),
                credit_limit=Decimal(limit if side == "p" else "0"),
                created_at=NOW,
                updated_at=NOW,
            )
            for side in ("p", "c")
        ]
        session.add_all(clients)
        await session.commit()
        payment = 0
        if paid is not None:
            posted = await ledger.add_credit(
                session,
                actor=stack.actor,
                client_id=clients[0].id,
                amount=Decimal(paid),
                payment_method=PaymentMethod.CASH,
            )
            payment = posted.entry_id
            stack.acknowledged.add(payment)
        return Round(clients[0].id, clients[1].id, payment)


async def send(stack: Stack, op: Op, round_: Round, barrier: asyncio.Barrier) -> dict[str, Any]:
    variables = op.variables(round_)
    await barrier.wait()
    response = await stack.http.post(
        "/graphql",
        json={"query": op.document, "variables": variables},
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body  # never INTERNAL_SERVER_ERROR, nor any other
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


async def check_invariants(stack: Stack) -> None:
    async with stack.engine.connect() as connection:
        clients = {
            row.id: row
            for row in await connection.execute(
                select(
                    Client.id,
                    Client.balance,
                    Client.credit_limit,
                    Client.currency,
                    Client.parent_id,
                )
            )
        }
        deleted = set(await connection.scalars(select(DeletedClient.id)))
        sums = {
            row.client_id: (Decimal(row.total), row.currencies)
            for row in await connection.execute(
                select(
                    CreditEntry.client_id,
                    func.coalesce(func.sum(CreditEntry.amount), 0).label("total"),
                    func.count(func.distinct(CreditEntry.currency)).label("currencies"),
                ).group_by(CreditEntry.client_id)
            )
        }
        entry_currencies = {
            (row.client_id, row.currency)
            for row in await connection.execute(
                select(CreditEntry.client_id, CreditEntry.currency).distinct()
            )
        }
        entries = set(await connection.scalars(select(CreditEntry.id)))
    for client in clients.values():
        total, _ = sums.get(client.id, (Decimal(0), 0))
        assert client.balance == total, f"client {client.id}: balance {client.balance} ≠ {total}"
        assert client.balance >= -client.credit_limit, f"client {client.id} past its limit"
        if client.parent_id is not None:
            parent = clients.get(client.parent_id)
            assert parent is not None, f"client {client.id}: its parent is gone"
            assert parent.currency == client.currency, f"client {client.id}: parent's currency"
            assert parent.parent_id is None, f"client {client.id}: links two levels deep"
    for client_id, currency in entry_currencies:
        if client_id in clients:
            assert currency == clients[client_id].currency, f"client {client_id}: {currency} entry"
    for client_id, (total, _) in sums.items():
        assert client_id in clients or client_id in deleted, f"entries of client {client_id} lost"
        if client_id in deleted:
            assert total == 0, f"deleted client {client_id} had a ledger sum of {total}"
    lost = stack.acknowledged - entries
    assert not lost, f"acknowledged ledger entries lost: {sorted(lost)}"


@pytest.mark.parametrize(
    ("first", "second", "paid", "limit"),
    [pair[1:] for pair in PAIRS],
    ids=[pair[0] for pair in PAIRS],
)
async def test_pair_at_the_same_moment_keeps_the_rules(
    stack: Stack, first: Op, second: Op, paid: str | None, limit: str
) -> None:
    for n in range(ROUNDS):
        # given fresh clients
        round_ = await new_round(stack, n, paid, limit)
        # when both operations arrive together
        barrier = asyncio.Barrier(2)
        answers = await asyncio.gather(
            send(stack, first, round_, barrier), send(stack, second, round_, barrier)
        )
        # then each is data or a documented refusal
        for op, answer in zip((first, second), answers, strict=True):
            codes = {error["code"] for error in answer["userErrors"]}
            assert codes <= op.codes, (n, answer)
            entry = answer.get("entry")
            if entry is not None:
                stack.acknowledged.add(int(base64.b64decode(entry["id"]).split(b":")[1]))
        # and the invariants hold
        await check_invariants(stack)
