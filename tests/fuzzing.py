"""What fuzzers need to reach past the first check: the global IDs of rows that exist, values the
services know (logins, currencies, custom field keys), and real cursors to tamper with."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import (
    ApiToken,
    AuditEntry,
    Category,
    Client,
    CreditEntry,
    CustomFieldDefinition,
    Department,
    Package,
    StaffUser,
)
from tests.hostile import global_id

# GraphQL type name: the table behind its global IDs (gql/node.py).
NODE_MODELS: dict[str, Any] = {
    "Client": Client,
    "CreditEntry": CreditEntry,
    "StaffUser": StaffUser,
    "Package": Package,
    "Department": Department,
    "Category": Category,
    "CustomFieldDefinition": CustomFieldDefinition,
    "AuditEntry": AuditEntry,
    "ApiToken": ApiToken,
}


async def seeded_ids(
    engine: AsyncEngine, *, per_type: int = 40, spare_tokens: frozenset[int] = frozenset()
) -> dict[str, list[str]]:
    """Global IDs of up to `per_type` rows of each type, in primary key order; API tokens in
    `spare_tokens` are left out (a fuzzer must not revoke its own)."""
    ids: dict[str, list[str]] = {}
    async with engine.connect() as connection:
        for type_name, model in NODE_MODELS.items():
            query = select(model.id).order_by(model.id).limit(per_type)
            pks = await connection.scalars(query)
            ids[type_name] = [
                global_id(type_name, pk)
                for pk in pks
                if type_name != "ApiToken" or pk not in spare_tokens
            ]
    return ids


async def known_strings(engine: AsyncEngine) -> list[str]:
    """Values the services look up: logins, e-mails, currencies, countries, languages, custom
    field keys and options, package names, staff e-mails."""
    found: set[str] = {"EUR", "USD", "JPY", "KWD", "DE", "US", "de", "pt-BR", "en"}
    async with engine.connect() as connection:
        for row in (await connection.execute(select(Client.login, Client.email).limit(20))).all():
            found.update(value for value in row if value)
        for row in await connection.execute(
            select(CustomFieldDefinition.key, CustomFieldDefinition.options)
        ):
            found.add(row.key)
            found.update(row.options or [])
        found.update(await connection.scalars(select(Package.name).limit(5)))
        found.update(await connection.scalars(select(StaffUser.email)))
    return sorted(found)


async def client_with_ledger(engine: AsyncEngine) -> str:
    """The global ID of a client with ledger entries (the first one)."""
    async with engine.connect() as connection:
        pk = await connection.scalar(select(CreditEntry.client_id).order_by(CreditEntry.id))
    return global_id("Client", pk)


CURSORS = """
query Cursors($client: ID!) {
  byDefault: clients(first: 2) { edges { cursor } }
  byLogin: clients(first: 2, orderBy: [{field: LOGIN}]) { edges { cursor } }
  byBalance: clients(first: 2, orderBy: [{field: BALANCE, direction: DESC}]) { edges { cursor } }
  byActivity: clients(first: 2, orderBy: [{field: LAST_ACTIVITY_AT}]) { edges { cursor } }
  byValidTill: clients(first: 2, orderBy: [{field: VALID_TILL}, {field: CREATED_AT}]) {
    edges { cursor }
  }
  auditLog(first: 2) { edges { cursor } }
  client(id: $client) {
    creditEntries(first: 2) { edges { cursor } }
    subAccounts(first: 2) { edges { cursor } }
  }
}
"""


async def real_cursors(http: httpx.AsyncClient, url: str, token: str, client_id: str) -> list[str]:
    """Cursors the API hands out, one of each list and ordering."""
    response = await http.post(
        url,
        json={"query": CURSORS, "variables": {"client": client_id}},
        headers={"Authorization": f"Bearer {token}"},
    )
    data = response.json()["data"]
    connections = [value for key, value in data.items() if key != "client"]
    connections += list((data.get("client") or {}).values())
    return [edge["cursor"] for connection in connections for edge in connection["edges"]]


FUZZ_LINES = pytest.StashKey[list[str]]()


def fuzz_report(config: pytest.Config, line: str) -> None:
    """A line for the end of the test output: what a fuzzing test ran (CI's log shows it)."""
    config.stash.setdefault(FUZZ_LINES, []).append(line)


def fuzz_summary(terminalreporter: Any) -> None:
    lines = terminalreporter.config.stash.get(FUZZ_LINES, [])
    if lines:
        terminalreporter.write_sep("-", "fuzzing")
        for line in lines:
            terminalreporter.write_line(line)
