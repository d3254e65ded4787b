"""What each money mutation costs in statements (issue 17, writes): on PostgreSQL the row lock,
then one statement claiming the idempotency key (with its response) and, if it was claimed,
writing the entry, the balance and the audit entry; on SQLite one statement each. The answer
is built from what was written: nothing is read again after the commit unless the client is
asked for."""

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db import direct
from tests.api import GraphQLClient
from tests.factories import Factory
from tests.gql.test_credits import ADD, admin, gid, ledger_is_consistent  # noqa: F401

PAYLOAD = "entry { id amount { amount } balanceAfter { amount } } replayed userErrors { code }"
WITH_CLIENT = f"{PAYLOAD} client {{ balance {{ amount }} }}"

# Each statement by its first words: PostgreSQL, then SQLite (whose lock is a write that
# takes the database's write lock, then the read).
LOCK = ["SELECT clients FOR UPDATE"]
WRITES = {
    "postgresql": [*LOCK, "WITH next_entry"],
    "sqlite": [
        "UPDATE clients",
        "SELECT clients",
        "INSERT idempotency_keys",
        "INSERT credit_entries",
        "UPDATE clients",
        "INSERT audit_log",
        "UPDATE idempotency_keys",
    ],
}


def kind(sql: str) -> str:
    """A statement's verb and table ("SELECT clients FOR UPDATE", "WITH next_entry")."""
    words = sql.split()
    verb = words[0].upper()
    if verb == "WITH":
        return f"WITH {words[1]}"
    if verb == "SELECT":
        outer = sql
        while (inner := re.sub(r"\([^()]*\)", "", outer)) != outer:  # subqueries left out
            outer = inner
        words = outer.split()
        table = words[words.index("FROM") + 1]
        return f"SELECT {table}" + (" FOR UPDATE" if "FOR UPDATE" in sql else "")
    if verb == "INSERT":
        return f"INSERT {words[2]}"
    return f"{verb} {words[1]}"


@contextmanager
def recorded(connection: AsyncConnection) -> Iterator[list[str]]:
    """The statements the app runs meanwhile, but the savepoints that stand in for its
    transactions here and the rate limiter's."""
    statements: list[str] = []

    def keep(sql: str) -> None:
        if "SAVEPOINT" not in sql and "rate_limit" not in sql:
            statements.append(kind(sql))

    def on_execute(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        keep(sql)

    def on_direct(_connection: Any, sql: str, _arguments: Any) -> None:
        keep(sql)

    event.listen(connection.sync_connection, "before_cursor_execute", on_execute)
    direct.observers.append(on_direct)
    try:
        yield statements
    finally:
        direct.observers.remove(on_direct)
        event.remove(connection.sync_connection, "before_cursor_execute", on_execute)


@pytest.fixture
async def ready(api: GraphQLClient, factory: Factory, admin: str) -> tuple[int, int]:  # noqa: F811
    """A client with money on it and a payment to reverse; the token has been looked up."""
    client = await factory.client(login="counted", currency="EUR", credit_limit=Decimal(0))
    variables = {"clientId": gid("Client", client.id), "amount": "50", "paymentMethod": "CARD"}
    paid = await api(ADD, {"input": variables})
    entry_id = paid["creditAdd"]["entry"]["id"]
    return client.id, int(base64.b64decode(entry_id).decode().split(":")[1])


MUTATIONS = ["creditAdd", "creditDeduct", "creditNoteCreate", "creditEntryReverse"]


def request(mutation: str, payload: str, client_id: int, entry_id: int) -> tuple[str, Any]:
    """The mutation's document asking for `payload`, and its variables (with a new key)."""
    key = f"{mutation}-{payload.count(' ')}"
    client = gid("Client", client_id)
    inputs = {
        "creditAdd": ("CreditAddInput", {"amount": "1.00", "paymentMethod": "CARD"}),
        "creditDeduct": ("CreditDeductInput", {"amount": "1.00", "reason": "x"}),
        "creditNoteCreate": (
            "CreditNoteCreateInput",
            {"lines": [{"description": "x", "quantity": 1, "unitAmount": "2"}]},
        ),
    }
    if mutation == "creditEntryReverse":
        document = (
            "mutation($id: ID!, $reason: String!, $key: String) { creditEntryReverse("
            f"entryId: $id, reason: $reason, idempotencyKey: $key) {{ {payload} }} }}"
        )
        return document, {"id": gid("CreditEntry", entry_id), "reason": "x", "key": key}
    type_name, values = inputs[mutation]
    document = f"mutation($input: {type_name}!) {{ {mutation}(input: $input) {{ {payload} }} }}"
    return document, {"input": {"clientId": client, "idempotencyKey": key, **values}}


# A reversal first reads the entry it undoes (with its reversal's id, if any).
BEFORE = {"creditEntryReverse": ["SELECT credit_entries"]}


def expected(backend: str, mutation: str) -> list[str]:
    writes = WRITES[backend]
    if backend == "sqlite" and mutation == "creditNoteCreate":  # its lines after the entry
        writes = [*writes[:6], "INSERT credit_note_lines", *writes[6:]]
    return BEFORE.get(mutation, []) + writes


@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_each_money_mutation_runs_a_fixed_few_statements(
    api: GraphQLClient,
    connection: AsyncConnection,
    session: AsyncSession,
    backend: str,
    ready: tuple[int, int],
    mutation: str,
) -> None:
    client_id, entry_id = ready
    # when it runs with an idempotency key, its answer asking for the entry only
    document, variables = request(mutation, PAYLOAD, client_id, entry_id)
    with recorded(connection) as statements:
        answer = (await api(document, variables))[mutation]
    # then it ran the lock, the claim and the writes, and read nothing after
    assert answer["userErrors"] == []
    assert answer["entry"] is not None
    assert statements == expected(backend, mutation)
    await ledger_is_consistent(session, client_id)
    # and asking for the client too reads the client once, after the commit
    document, variables = request(mutation, WITH_CLIENT, client_id, entry_id)
    if mutation == "creditEntryReverse":  # a second reversal is refused: undo the deduction
        return
    with recorded(connection) as statements:
        answer = (await api(document, variables))[mutation]
    assert answer["userErrors"] == []
    assert statements == [*expected(backend, mutation), "SELECT clients"]
    balance = await ledger_is_consistent(session, client_id)
    assert answer["client"]["balance"] == {"amount": f"{balance:.2f}"}
