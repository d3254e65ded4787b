"""Payment batches at the same moment as other money mutations and as themselves (issue 20,
point 4), through the whole stack over connections that really commit, lined up on a barrier
(tests/services/test_races.py's rounds): no update lost, nothing applied twice, the ledger's
invariants hold after every round; on PostgreSQL they meet at row locks and the keys' unique
index, on SQLite they take turns."""

import asyncio
import base64
from typing import Any

from sqlalchemy import func, select

from db.models import CreditEntry
from tests.services import test_races
from tests.services.test_races import ROUNDS, Stack, check_invariants, gid, new_round

stack = test_races.stack  # the fixture: an app over a scratch database

BATCH = """mutation($input: CreditAddBatchInput!) {
  creditAddBatch(input: $input) {
    results { entry { id } replayed userErrors { code } } userErrors { code } } }"""
DEDUCT = """mutation($id: ID!, $amount: Decimal!) {
  creditDeduct(input: {clientId: $id, amount: $amount, reason: "usage"}) {
    entry { id } userErrors { code } } }"""
ADD_KEYED = """mutation($id: ID!, $key: String!) {
  creditAdd(input: {clientId: $id, amount: "2.00", paymentMethod: CASH, idempotencyKey: $key}) {
    entry { id } replayed userErrors { code } } }"""


def payments(client: int, n: int, count: int, amount: str = "1.00") -> list[dict[str, Any]]:
    return [
        {
            "clientId": gid("Client", client),
            "amount": amount,
            "paymentMethod": "BANK_TRANSFER",
            "idempotencyKey": f"round{n}-{i}",
        }
        for i in range(count)
    ]


async def send(
    stack: Stack, document: str, variables: dict[str, Any], barrier: asyncio.Barrier
) -> dict[str, Any]:
    await barrier.wait()
    response = await stack.http.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body  # never INTERNAL_SERVER_ERROR, nor any other
    return next(iter(body["data"].values()))  # type: ignore[no-any-return]


def entry_pk(entry: dict[str, Any]) -> int:
    return int(base64.b64decode(entry["id"]).split(b":")[1])


async def entries_of(stack: Stack, client_id: int) -> int:
    async with stack.engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(CreditEntry).where(CreditEntry.client_id == client_id)
        )
    return int(count or 0)


async def test_a_batch_and_a_deduction_lose_no_update(stack: Stack) -> None:
    for n in range(ROUNDS):
        # given a client holding 5.00, no credit
        round_ = await new_round(stack, n, "5.00", "0")
        barrier = asyncio.Barrier(2)
        # when a batch pays it five times while 8.00 is deducted
        batch, deducted = await asyncio.gather(
            send(stack, BATCH, {"input": {"payments": payments(round_.parent, n, 5)}}, barrier),
            send(stack, DEDUCT, {"id": gid("Client", round_.parent), "amount": "8.00"}, barrier),
        )
        # then every payment went in, and the deduction either saw all of them or none
        assert all(r["userErrors"] == [] for r in batch["results"]), batch
        stack.acknowledged.update(entry_pk(r["entry"]) for r in batch["results"])
        codes = {e["code"] for e in deducted["userErrors"]}
        assert codes <= {"CREDIT_LIMIT_EXCEEDED", "CONFLICT"}, deducted
        if deducted["entry"] is not None:
            stack.acknowledged.add(entry_pk(deducted["entry"]))
        await check_invariants(stack)


async def test_the_same_batch_twice_at_once_applies_each_payment_once(stack: Stack) -> None:
    for n in range(ROUNDS):
        round_ = await new_round(stack, n, None, "0")
        variables = {
            "input": {
                "payments": [
                    *payments(round_.parent, n, 3),
                    *payments(round_.child, n + 1000, 3),
                ]
            }
        }
        barrier = asyncio.Barrier(2)
        first, second = await asyncio.gather(
            send(stack, BATCH, variables, barrier), send(stack, BATCH, variables, barrier)
        )
        # then both answer the same entries; one made them, the other replayed them
        for answer in (first, second):
            assert all(r["userErrors"] == [] for r in answer["results"]), answer
        assert [r["entry"] for r in first["results"]] == [r["entry"] for r in second["results"]]
        replays = sorted(
            {r["replayed"] for r in answer["results"]} == {True} for answer in (first, second)
        )
        assert replays == [False, True]
        assert await entries_of(stack, round_.parent) == 3
        assert await entries_of(stack, round_.child) == 3
        stack.acknowledged.update(entry_pk(r["entry"]) for r in first["results"])
        await check_invariants(stack)


async def test_a_key_taken_meanwhile_by_creditadd_refuses_that_row_only(stack: Stack) -> None:
    for n in range(ROUNDS):
        # given a batch paying the parent, one of whose keys creditAdd uses at the same moment
        # for the other client (another request: locks on other rows, a race at the key)
        round_ = await new_round(stack, n, None, "0")
        rows = payments(round_.parent, n, 3)
        barrier = asyncio.Barrier(2)
        batch, added = await asyncio.gather(
            send(stack, BATCH, {"input": {"payments": rows}}, barrier),
            send(
                stack,
                ADD_KEYED,
                {"id": gid("Client", round_.child), "key": rows[1]["idempotencyKey"]},
                barrier,
            ),
        )
        # then exactly one of them used the key; the batch's other rows went through
        batch_codes = [[e["code"] for e in r["userErrors"]] for r in batch["results"]]
        added_codes = [e["code"] for e in added["userErrors"]]
        if added_codes:
            assert added_codes == ["IDEMPOTENCY_KEY_REUSED"]
            assert batch_codes == [[], [], []]
        else:
            assert batch_codes == [[], ["IDEMPOTENCY_KEY_REUSED"], []]
            stack.acknowledged.add(entry_pk(added["entry"]))
        stack.acknowledged.update(
            entry_pk(r["entry"]) for r in batch["results"] if r["entry"] is not None
        )
        assert await entries_of(stack, round_.parent) == 3 - (not added_codes)
        await check_invariants(stack)
