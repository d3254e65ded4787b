"""The ledger as an accountant reads it: entries by kind and period, and statements whose
opening balance plus entries is the closing balance, in the currency's minor units."""

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory
from tests.gql.test_clients_list import gid

ADD = """
mutation($id: ID!, $amount: Decimal!) {
  creditAdd(input: {clientId: $id, amount: $amount, paymentMethod: CASH}) {
    entry { id } userErrors { code }
  }
}
"""
DEDUCT = """
mutation($id: ID!, $amount: Decimal!) {
  creditDeduct(input: {clientId: $id, amount: $amount, reason: "fee"}) {
    entry { id } userErrors { code }
  }
}
"""
NOTE = """
mutation($id: ID!, $amount: Decimal!) {
  creditNoteCreate(input: {clientId: $id, lines: [{description: "x", unitAmount: $amount},
                                                   {description: "y", quantity: -1,
                                                    unitAmount: "1"}]}) {
    entry { id } userErrors { code }
  }
}
"""
REVERSE = """
mutation($entry: ID!) {
  creditEntryReverse(entryId: $entry, reason: "wrong") { entry { id } userErrors { code } }
}
"""
LEDGER = """
query($id: ID!, $kinds: [CreditEntryKind!], $from: DateTime, $to: DateTime, $after: String) {
  client(id: $id) {
    creditEntries(first: 100, after: $after, kinds: $kinds, from: $from, to: $to) {
      totalCount
      nodes { id kind amount { amount } balanceAfter { amount } createdAt }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
STATEMENT = """
query($id: ID!, $from: DateTime!, $to: DateTime!) {
  creditStatement(clientId: $id, from: $from, to: $to) {
    currency from to
    openingBalance { amount currency } closingBalance { amount currency }
    totals { kind count amount { amount } }
    entries(first: 100) { nodes { id kind amount { amount } } }
  }
}
"""


async def post_history(
    api: GraphQLClient, clock: FakeClock, client_id: str, rng: random.Random, unit: str
) -> None:
    """Thirty entries of every kind, hours apart."""
    posted: list[str] = []
    for _ in range(30):
        clock.advance(timedelta(hours=rng.randrange(1, 30)))
        kind = rng.choice(["add", "add", "deduct", "note", "reverse"])
        amount = str(Decimal(rng.randrange(1, 500)) * Decimal(unit))
        if kind == "reverse" and posted:
            data = await api(REVERSE, {"entry": posted.pop(rng.randrange(len(posted)))})
            assert data["creditEntryReverse"]["userErrors"] in ([], [{"code": "NOT_REVERSIBLE"}])
            continue
        document, name = {
            "add": (ADD, "creditAdd"),
            "deduct": (DEDUCT, "creditDeduct"),
            "note": (NOTE, "creditNoteCreate"),
        }.get(kind, (ADD, "creditAdd"))
        data = (await api(document, {"id": client_id, "amount": amount}))[name]
        assert data["userErrors"] == [], data
        posted.append(data["entry"]["id"])


async def whole_ledger(api: GraphQLClient, client_id: str, **filters: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await api(LEDGER, {"id": client_id, "after": after, **filters}))["client"]
        nodes += page["creditEntries"]["nodes"]
        if not page["creditEntries"]["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["creditEntries"]["pageInfo"]["endCursor"]


@pytest.mark.parametrize(("currency", "unit", "decimals"), [("EUR", "0.01", 2), ("JPY", "1", 0)])
async def test_statements_add_up_for_any_period(
    api: GraphQLClient,
    factory: Factory,
    clock: FakeClock,
    currency: str,
    unit: str,
    decimals: int,
) -> None:
    # given a client with a history of every kind of entry
    api.token = await factory.admin_token()
    client = await factory.client(currency=currency, credit_limit=Decimal(100000))
    client_id = gid("Client", client.id)
    start = clock()
    rng = random.Random(7)
    await post_history(api, clock, client_id, rng, unit)
    ledger = await whole_ledger(api, client_id)  # newest first
    assert {entry["kind"] for entry in ledger} >= {"PAYMENT", "DEDUCTION", "CREDIT_NOTE"}
    for _ in range(12):
        # when a statement is asked for a period
        a, b = sorted(rng.sample(range(0, 40 * 24), 2))
        period_from = start + timedelta(hours=a)
        period_to = start + timedelta(hours=b)
        variables = {"id": client_id, "from": period_from.isoformat(), "to": period_to.isoformat()}
        statement = (await api(STATEMENT, variables))["creditStatement"]

        # then opening + the period's entries = closing, each as the ledger itself says
        def moment(entry: dict[str, Any]) -> datetime:
            return datetime.fromisoformat(entry["createdAt"])

        inside = [e for e in ledger if period_from <= moment(e) < period_to]
        earlier = [e for e in ledger if moment(e) < period_from]
        opening = Decimal(statement["openingBalance"]["amount"])
        closing = Decimal(statement["closingBalance"]["amount"])
        assert opening == (Decimal(earlier[0]["balanceAfter"]["amount"]) if earlier else 0)
        assert closing == opening + sum(Decimal(e["amount"]["amount"]) for e in inside)
        if inside:
            assert closing == Decimal(inside[0]["balanceAfter"]["amount"])
        totals = {
            t["kind"]: (t["count"], Decimal(t["amount"]["amount"])) for t in statement["totals"]
        }
        assert opening + sum(amount for _, amount in totals.values()) == closing
        assert sum(count for count, _ in totals.values()) == len(inside)
        # and the entries are the period's, oldest first
        assert [e["id"] for e in statement["entries"]["nodes"]] == [
            e["id"] for e in reversed(inside)
        ]
        # in the client's currency, with its minor units
        assert statement["currency"] == statement["closingBalance"]["currency"] == currency
        written = statement["closingBalance"]["amount"]
        assert len(written.partition(".")[2]) == decimals


async def test_entries_by_kind_and_period(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    api.token = await factory.admin_token()
    client = await factory.client(credit_limit=Decimal(100000))
    client_id = gid("Client", client.id)
    start = clock()
    await post_history(api, clock, client_id, random.Random(3), "0.01")
    ledger = await whole_ledger(api, client_id)
    period = (start + timedelta(days=5), start + timedelta(days=20))
    for kinds in (["PAYMENT"], ["DEDUCTION", "REVERSAL"], None):
        got = await whole_ledger(
            api,
            client_id,
            kinds=kinds,
            **{"from": period[0].isoformat(), "to": period[1].isoformat()},
        )
        want = [
            e
            for e in ledger
            if (kinds is None or e["kind"] in kinds)
            and period[0] <= datetime.fromisoformat(e["createdAt"]) < period[1]
        ]
        assert got == want
        assert want  # not vacuous


async def test_a_period_must_end_after_it_starts(api: GraphQLClient, factory: Factory) -> None:
    api.token = await factory.admin_token()
    client = await factory.client()
    variables = {
        "id": gid("Client", client.id),
        "from": "2026-06-02T00:00:00Z",
        "to": "2026-06-01T00:00:00Z",
    }
    errors = await api.errors(STATEMENT, variables)
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    errors = await api.errors(LEDGER, variables)
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    # and no such client: no statement
    missing = {**variables, "id": gid("Client", 10**9), "to": "2026-06-03T00:00:00Z"}
    assert (await api(STATEMENT, missing))["creditStatement"] is None
