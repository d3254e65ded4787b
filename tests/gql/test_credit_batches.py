"""Payment batches (issue 20, point 4): up to 1,000 payments in one request, each by creditAdd's
rules and with its own idempotency key, each answered on its own; a replay answers the same."""

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.enums import StaffRole
from db.models import AuditEntry, CreditEntry, IdempotencyKey, SystemSetting
from services.system_settings import BILLING_MODE_KEY
from tests.api import GraphQLClient
from tests.factories import Factory
from tests.gql.test_credits import ADD, admin, gid, ledger_is_consistent  # noqa: F401
from tests.gql.test_credits_statements import recorded

BATCH = """
mutation($input: CreditAddBatchInput!) {
  creditAddBatch(input: $input) {
    results {
      index replayed userErrors { field code }
      entry { id kind amount { amount currency } balanceAfter { amount } paymentMethod
              paymentReference comment }
    }
    userErrors { field code }
  }
}
"""


def payment(client_id: int, amount: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "clientId": gid("Client", client_id),
        "amount": amount,
        "paymentMethod": "BANK_TRANSFER",
        "idempotencyKey": key,
        **extra,
    }


async def send(
    api: GraphQLClient, payments: list[dict[str, Any]], token: str | None = None
) -> dict[str, Any]:
    answer = await api(BATCH, {"input": {"payments": payments}}, token=token)
    return answer["creditAddBatch"]  # type: ignore[no-any-return]


def row_codes(answer: dict[str, Any]) -> list[list[tuple[list[str] | None, str]]]:
    return [[(e["field"], e["code"]) for e in row["userErrors"]] for row in answer["results"]]


async def entries_of(session: AsyncSession, client_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(CreditEntry).where(CreditEntry.client_id == client_id)
    )
    return int(count or 0)


def at(n: int, *field: str) -> list[str]:
    return ["input", "payments", str(n), *field]


@pytest.mark.usefixtures("admin")
async def test_each_row_is_answered_on_its_own(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given clients in EUR and JPY, and a deleted (missing) one
    eur = await factory.client(currency="EUR")
    jpy = await factory.client(currency="JPY")
    rows: list[tuple[dict[str, Any], list[tuple[list[str], str]]]] = [
        (payment(eur.id, "10.50", "ok-1", paymentReference="ST-1", comment="March"), []),
        (payment(jpy.id, "100.5", "jpy"), [(at(1, "amount"), "INVALID_AMOUNT_PRECISION")]),
        (payment(eur.id, "0", "zero"), [(at(2, "amount"), "AMOUNT_NOT_POSITIVE")]),
        (payment(eur.id, "-5", "neg"), [(at(3, "amount"), "AMOUNT_NOT_POSITIVE")]),
        (payment(eur.id, "1000000000000.01", "big"), [(at(4, "amount"), "AMOUNT_TOO_LARGE")]),
        (payment(10**9, "1", "gone"), [(at(5, "clientId"), "NOT_FOUND")]),
        (payment(eur.id, "1", ""), [(at(6, "idempotencyKey"), "INVALID")]),
        (payment(eur.id, "1", "k" * 201), [(at(7, "idempotencyKey"), "TOO_LONG")]),
        (payment(eur.id, "1", "x", comment="c" * 600), [(at(8, "comment"), "TOO_LONG")]),
        (
            payment(eur.id, "1", "y", paymentReference="r" * 300),
            [(at(9, "paymentReference"), "TOO_LONG")],
        ),
        (payment(eur.id, "2", "ok-1"), [(at(10, "idempotencyKey"), "DUPLICATE")]),
        (payment(jpy.id, "100", "ok-2"), []),
    ]
    # when they are sent as one batch
    answer = await send(api, [row for row, _ in rows])
    # then each row has its own answer, in input order, and the valid ones went through
    assert answer["userErrors"] == []
    assert [r["index"] for r in answer["results"]] == list(range(len(rows)))
    assert row_codes(answer) == [errors for _, errors in rows]
    first = answer["results"][0]["entry"]
    assert first["amount"] == {"amount": "10.50", "currency": "EUR"}
    assert (first["kind"], first["paymentReference"], first["comment"]) == (
        "PAYMENT",
        "ST-1",
        "March",
    )
    assert answer["results"][11]["entry"]["amount"] == {"amount": "100", "currency": "JPY"}
    assert [r["entry"] is None for r in answer["results"]] == [bool(errors) for _, errors in rows]
    assert await ledger_is_consistent(session, eur.id) == Decimal("10.50")
    assert await ledger_is_consistent(session, jpy.id) == Decimal(100)
    # and each payment is audited as creditAdd audits it
    audited = (
        await session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "credit.add", AuditEntry.target_id.in_([eur.id, jpy.id])
            )
        )
    ).all()
    assert sorted(
        (a.target_id, Decimal(a.after["amount"]), Decimal(a.before["balance"])) for a in audited
    ) == sorted([(eur.id, Decimal("10.50"), Decimal(0)), (jpy.id, Decimal(100), Decimal(0))])
    assert all(a.after["entry_id"] is not None for a in audited)


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("amount", "NaN", "INVALID_AMOUNT"),
        ("amount", "ten", "INVALID_AMOUNT"),
        ("paymentMethod", "CHEQUE", "INVALID_CHOICE"),
        ("clientId", "not-an-id", "INVALID_ID"),
    ],
)
async def test_a_value_that_cannot_be_read_refuses_the_batch(
    api: GraphQLClient, factory: Factory, session: AsyncSession, field: str, value: str, code: str
) -> None:
    # a malformed request (not a rule broken): answered as every mutation answers it
    client = await factory.client(currency="EUR")
    payments = [payment(client.id, "1", "v-1"), {**payment(client.id, "1", "v-2"), field: value}]
    answer = await send(api, payments)
    assert answer["results"] == []
    assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [(at(1, field), code)]
    assert await entries_of(session, client.id) == 0


@pytest.mark.usefixtures("admin")
async def test_replaying_the_batch_answers_the_same(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given a batch with good and bad rows, sent once
    client = await factory.client(currency="EUR")
    payments = [
        payment(client.id, "5", "r-1"),
        payment(client.id, "0", "r-2"),
        payment(client.id, "7.25", "r-3", paymentReference="ST-9"),
        payment(10**9, "1", "r-4"),
    ]
    first = await send(api, payments)
    # when it is sent again, and again
    second = await send(api, payments)
    third = await send(api, payments)
    # then the same entries come back, replayed, and nothing was applied twice
    assert third == second
    for before, after in zip(first["results"], second["results"], strict=True):
        assert after == {**before, "replayed": before["entry"] is not None}
    assert [r["replayed"] for r in second["results"]] == [True, False, True, False]
    assert await entries_of(session, client.id) == 2
    assert await ledger_is_consistent(session, client.id) == Decimal("12.25")
    # and "5" is "5.00": the same request, replayed
    again = await send(api, [payment(client.id, "5.00", "r-1")])
    assert again["results"][0]["replayed"] is True
    assert again["results"][0]["entry"] == first["results"][0]["entry"]


@pytest.mark.usefixtures("admin")
async def test_a_key_reused_for_another_payment_is_refused_on_its_row_only(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    client = await factory.client(currency="EUR")
    await send(api, [payment(client.id, "5", "u-1"), payment(client.id, "6", "u-2")])
    # when one key comes back with another amount, beside a new payment
    answer = await send(api, [payment(client.id, "9", "u-1"), payment(client.id, "1", "u-3")])
    # then that row alone is refused
    assert row_codes(answer) == [[(at(0, "idempotencyKey"), "IDEMPOTENCY_KEY_REUSED")], []]
    assert await ledger_is_consistent(session, client.id) == Decimal(12)


@pytest.mark.usefixtures("admin")
async def test_a_key_of_creditadd_replays_in_a_batch(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    client = await factory.client(currency="EUR")
    single = {
        "clientId": gid("Client", client.id),
        "amount": "3",
        "paymentMethod": "BANK_TRANSFER",
        "idempotencyKey": "both",
    }
    added = (await api(ADD, {"input": single}))["creditAdd"]
    answer = await send(api, [payment(client.id, "3.00", "both")])
    assert answer["results"][0]["replayed"] is True
    assert answer["results"][0]["entry"]["id"] == added["entry"]["id"]
    assert await entries_of(session, client.id) == 1


@pytest.mark.usefixtures("admin")
async def test_payments_to_one_client_chain_their_balances(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given two clients with money on them
    one = await factory.client(currency="EUR", balance=Decimal(0))
    other = await factory.client(currency="KWD")
    await send(api, [payment(one.id, "100", "seed")])
    # when a batch pays each several times, interleaved
    answer = await send(
        api,
        [
            payment(one.id, "1", "c-1"),
            payment(other.id, "0.125", "c-2"),
            payment(one.id, "2", "c-3"),
            payment(one.id, "0", "c-4"),  # refused: no link in the chain
            payment(other.id, "0.125", "c-5"),
            payment(one.id, "4", "c-6"),
        ],
    )
    # then each balanceAfter follows the one before it, in input order
    after = [r["entry"] and r["entry"]["balanceAfter"]["amount"] for r in answer["results"]]
    assert after == ["101.00", "0.125", "103.00", None, "0.250", "107.00"]
    assert await ledger_is_consistent(session, one.id) == Decimal(107)
    assert await ledger_is_consistent(session, other.id) == Decimal("0.250")


async def test_a_manager_pays_only_their_own_clients(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    manager = await factory.staff(role=StaffRole.MANAGER)
    token = await factory.token(manager)
    own = await factory.client(currency="EUR", manager_id=manager.id)
    foreign = await factory.client(currency="EUR")
    answer = await send(
        api, [payment(own.id, "1", "m-1"), payment(foreign.id, "1", "m-2")], token=token
    )
    assert row_codes(answer) == [[], [(at(1, "clientId"), "NOT_ALLOWED")]]
    assert await entries_of(session, foreign.id) == 0
    assert await ledger_is_consistent(session, own.id) == Decimal(1)


@pytest.mark.usefixtures("admin")
async def test_billing_mode_off_refuses_each_row_but_replays(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    client = await factory.client(currency="EUR")
    await send(api, [payment(client.id, "1", "b-1")])
    session.add(SystemSetting(key=BILLING_MODE_KEY, value=False))
    await session.commit()
    answer = await send(api, [payment(client.id, "1", "b-1"), payment(client.id, "2", "b-2")])
    assert answer["results"][0]["replayed"] is True
    assert row_codes(answer)[1] == [(at(1), "BILLING_MODE_OFF")]
    assert await ledger_is_consistent(session, client.id) == Decimal(1)


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(("rows", "code"), [(0, "REQUIRED"), (1001, "TOO_MANY")])
async def test_a_batch_holds_1_to_1000_payments(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    connection: AsyncConnection,
    rows: int,
    code: str,
) -> None:
    client = await factory.client(currency="EUR")
    payments = [payment(client.id, "1", f"n-{n}") for n in range(rows)]
    with recorded(connection) as statements:
        answer = await send(api, payments)
    # refused before any work: no statement about clients, keys or entries ran
    assert answer == {"results": [], "userErrors": [{"field": ["input", "payments"], "code": code}]}
    assert not [s for s in statements if "clients" in s or "idempotency" in s]
    assert await entries_of(session, client.id) == 0


# Each statement by its first words (tests/gql/test_credits_statements.py): the lock (SQLite's
# write lock first), the keys in use, the new entries' ids, the keys' claim, the writes.
BATCH_STATEMENTS = {
    "postgresql": [
        "SELECT clients FOR UPDATE",
        "SELECT idempotency_keys",
        "SELECT generate_series",
        "INSERT idempotency_keys",
        "INSERT credit_entries",
        "UPDATE clients",
        "INSERT audit_log",
    ],
    "sqlite": [
        "UPDATE clients",
        "SELECT clients",
        "SELECT idempotency_keys",
        "SELECT credit_entries",
        "INSERT idempotency_keys",
        "INSERT credit_entries",
        "UPDATE clients",
        "INSERT audit_log",
    ],
}


@pytest.mark.usefixtures("admin")
async def test_a_batch_runs_the_same_statements_for_1_and_100_payments(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    connection: AsyncConnection,
    backend: str,
) -> None:
    clients = [await factory.client(currency="EUR") for _ in range(10)]
    await send(api, [payment(clients[0].id, "1", "warm")])  # the token looked up
    counted: list[list[str]] = []
    for size in (1, 100):
        payments = [payment(clients[n % 10].id, "1", f"s{size}-{n}") for n in range(size)]
        with recorded(connection) as statements:
            answer = await send(api, payments)
        assert all(r["userErrors"] == [] for r in answer["results"])
        counted.append(statements)
    assert counted[0] == counted[1] == BATCH_STATEMENTS[backend]
    for client in clients:
        await ledger_is_consistent(session, client.id)
    keys = await session.scalar(select(func.count()).select_from(IdempotencyKey))
    assert keys == 102


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(("rows", "points"), [(1, 11), (100, 11), (101, 12), (1000, 20)])
async def test_a_batch_costs_a_node_per_payment(api: GraphQLClient, rows: int, points: int) -> None:
    # rows for a client that does not exist: refused one by one, each counted all the same
    payments = [payment(10**9, "1", f"cost-{n}") for n in range(rows)]
    response = await api.post(BATCH, {"input": {"payments": payments}})
    cost = response.json()["extensions"]["cost"]
    assert (cost["nodes"], cost["requestedQueryCost"]) == (rows, points)


README = Path(__file__).parent.parent.parent / "README.md"


@pytest.mark.usefixtures("admin")
async def test_the_readme_example_runs(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given the README's example, its client IDs pointed at two clients of ours
    blocks = re.findall(r"```(?:graphql|json)\n(.*?)```", README.read_text(), re.DOTALL)
    at = next(n for n, block in enumerate(blocks) if block.startswith("mutation Import("))
    document, variables = blocks[at], json.loads(blocks[at + 1])
    clients = [await factory.client(currency="EUR") for _ in range(2)]
    for row, client in zip(variables["input"]["payments"], clients, strict=True):
        row["clientId"] = gid("Client", client.id)
    # when it runs, twice
    first = (await api(document, variables))["creditAddBatch"]
    again = (await api(document, variables))["creditAddBatch"]
    # then both payments went in once, and the second answer replayed them
    assert [r["userErrors"] for r in first["results"]] == [[], []]
    assert [r["replayed"] for r in again["results"]] == [True, True]
    assert first["results"][1]["entry"]["amount"] == {"amount": "20.50", "currency": "EUR"}
    assert await ledger_is_consistent(session, clients[0].id) == Decimal(150)
    assert await ledger_is_consistent(session, clients[1].id) == Decimal("20.5")
