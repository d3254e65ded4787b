"""Tampered cursors: every connection refuses them with BAD_USER_INPUT, never a failed query.

Each case decodes a real cursor of the connection and changes one thing, as someone editing
the base64 by hand would; the table runs against every connection that takes cursors.
"""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import EntryKind
from db.models import AuditEntry, CreditEntry
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

Payload = list[Any]
Tamper = Callable[[Payload], str]


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode(cursor: str) -> Payload:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))  # type: ignore[no-any-return]


def raw(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def encoded(payload: Any) -> str:
    # json.dumps writes NaN and Infinity literals and \ud800 escapes, as a forger's tool might
    return raw(json.dumps(payload).encode())


def changed(index: int, value: Any) -> Tamper:
    return lambda p: encoded([*p[:index], value, *p[index + 1 :]])


def key_value(value: Any) -> Tamper:
    """The first sort key's value replaced."""
    return lambda p: encoded([p[0], [value, *p[1][1:]], p[2]])


# Every connection: the id, the structure, the encoding.
ANY_CONNECTION: dict[str, Tamper] = {
    "id above int64": changed(2, 2**63),
    "id above uint64": changed(2, 2**64),
    "id far above int64": changed(2, 2**70),
    "negative id": changed(2, -1),
    "zero id": changed(2, 0),
    "id as text": lambda p: encoded([p[0], p[1], str(p[2])]),
    "id as boolean": changed(2, True),
    "id as fraction": lambda p: encoded([p[0], p[1], p[2] + 0.5]),
    "id NaN": changed(2, float("nan")),
    "id Infinity": changed(2, float("inf")),
    "id null": changed(2, None),
    "values not a list": changed(1, {"k": 1}),
    "one value too many": lambda p: encoded([p[0], [*p[1], 1], p[2]]),
    "payload an object": lambda p: encoded({"signature": p[0], "values": p[1], "id": p[2]}),
    "payload too short": lambda p: encoded(p[:2]),
    "payload too long": lambda p: encoded([*p, 1]),
    "signature of another sort": changed(0, "LOGIN:ASC"),
    "signature not text": changed(0, 7),
    "signature with NUL": lambda p: encoded([p[0] + "\x00", p[1], p[2]]),
    "signature a lone surrogate": changed(0, "\ud800"),
    "deep JSON": lambda p: raw(f'["{p[0]}", {"[" * 1100}{"]" * 1100}, {p[2]}]'.encode()),
    "not JSON": lambda p: raw(b"\xff\xfe not json"),
    "not base64": lambda p: "%%%%",
    "NUL in the cursor": lambda p: encoded(p) + "\x00",
    "base64 with padding": lambda p: encoded(p) + "==",
    "too long": lambda p: "A" * 5000,
    "empty": lambda p: "",
}
# Connections sorted by a date and time (clients and sub-accounts by default).
DATE_KEY: dict[str, Tamper] = {
    "year 1 with an offset": key_value("0001-01-01T00:00:00+05:00"),
    "year 9999 with an offset": key_value("9999-12-31T23:59:59-05:00"),
    "date without an offset": key_value("2026-06-01T12:00:00"),
    "date Infinity": key_value("Infinity"),
    "date NaN": key_value("NaN"),
    "date not a date": key_value("2026-13-01T00:00:00+00:00"),
    "date as a number": key_value(1780000000),
    "date null in a NOT NULL column": key_value(None),
}
# Clients sorted by credit limit: a decimal column (19 digits, 4 decimals).
DECIMAL_KEY: dict[str, Tamper] = {
    "amount NaN": key_value("NaN"),
    "amount Infinity": key_value("Infinity"),
    "amount -Infinity": key_value("-Infinity"),
    "amount 1e400": key_value("1e400"),
    "amount beyond the column": key_value("1000000000000000"),
    "amount with 5 decimals": key_value("0.00001"),
    "amount as a JSON number": key_value(5.5),
    "amount not a number": key_value("12,50"),
    "amount in Arabic-Indic digits": key_value("\u0661\u0662"),
    "amount null in a NOT NULL column": key_value(None),
}
# Clients sorted by chats: an integer column.
INTEGER_KEY: dict[str, Tamper] = {
    "count as a string": key_value("3"),
    "count as a fraction": key_value(2.5),
    "count as a boolean": key_value(True),
    "count beyond a BIGINT": key_value(2**63),
    "count null in a NOT NULL column": key_value(None),
}
# Clients sorted by login: a text column of 64 characters.
TEXT_KEY: dict[str, Tamper] = {
    "text with NUL": key_value("a\x00b"),
    "text a lone surrogate": key_value("\ud800"),
    "text longer than the column": key_value("x" * 65),
    "text as a number": key_value(42),
    "text as a list": key_value(["a"]),
    "text null in a NOT NULL column": key_value(None),
}

CLIENTS = """
query($first: Int, $after: String, $last: Int, $before: String, $orderBy: [ClientOrder!]) {
  clients(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
    edges { cursor node { login } }
  }
}
"""
# customFields is not compiled: this runs on graphql-core's executor
CLIENTS_EXECUTOR = """
query($first: Int, $after: String, $orderBy: [ClientOrder!]) {
  clients(first: $first, after: $after, orderBy: $orderBy) {
    edges { cursor node { login customFields { value } } }
  }
}
"""
SUB_ACCOUNTS = """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  client(id: $id) {
    subAccounts(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor }
    }
  }
}
"""
CREDIT_ENTRIES = """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  client(id: $id) {
    creditEntries(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor }
    }
  }
}
"""
AUDIT_LOG = """
query($first: Int, $after: String) { auditLog(first: $first, after: $after) { edges { cursor } } }
"""


@dataclass(frozen=True)
class Connection:
    """A connection field: its document, its extra variables, and where its edges are."""

    query: str
    variables: Callable[[int], dict[str, Any]]
    edges: Callable[[dict[str, Any]], list[dict[str, Any]]]
    cases: dict[str, Tamper]
    backwards: bool = True  # takes last/before too


def top(name: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    return lambda data: data[name]["edges"]  # type: ignore[no-any-return]


def under_client(name: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    return lambda data: data["client"][name]["edges"]  # type: ignore[no-any-return]


CONNECTIONS = {
    "clients": Connection(CLIENTS, lambda _: {}, top("clients"), DATE_KEY),
    "clients by credit limit": Connection(
        CLIENTS, lambda _: {"orderBy": [{"field": "CREDIT_LIMIT"}]}, top("clients"), DECIMAL_KEY
    ),
    "clients by chats": Connection(
        CLIENTS, lambda _: {"orderBy": [{"field": "CHATS"}]}, top("clients"), INTEGER_KEY
    ),
    "clients by login": Connection(
        CLIENTS,
        lambda _: {"orderBy": [{"field": "LOGIN", "direction": "DESC"}]},
        top("clients"),
        TEXT_KEY,
    ),
    "clients on the executor": Connection(
        CLIENTS_EXECUTOR, lambda _: {}, top("clients"), DATE_KEY, backwards=False
    ),
    "subAccounts": Connection(
        SUB_ACCOUNTS,
        lambda parent: {"id": gid("Client", parent)},
        under_client("subAccounts"),
        DATE_KEY,
    ),
    "creditEntries": Connection(
        CREDIT_ENTRIES,
        lambda parent: {"id": gid("Client", parent)},
        under_client("creditEntries"),
        {},
    ),
    "auditLog": Connection(AUDIT_LOG, lambda _: {}, top("auditLog"), {}, backwards=False),
}


@pytest.fixture
async def parent_id(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> int:
    """A parent with three sub-accounts, three ledger entries, and three audit entries."""
    api.token = await factory.admin_token()
    parent = await factory.client(balance=Decimal(30))
    for n in range(3):
        clock.advance(timedelta(minutes=1))
        await factory.client(parent_id=parent.id, balance=Decimal(n))
        session.add(
            CreditEntry(
                client_id=parent.id,
                kind=EntryKind.PAYMENT,
                amount=Decimal(10),
                currency="EUR",
                balance_after=Decimal(10 * (n + 1)),
                created_at=clock(),
            )
        )
        session.add(
            AuditEntry(
                occurred_at=clock(),
                action="client.update",
                target_type="Client",
                target_id=parent.id,
                target_label=parent.login,
            )
        )
    await session.commit()
    return parent.id


async def real_cursor(api: GraphQLClient, connection: Connection, parent_id: int) -> str:
    """The cursor of the second row of the connection's first page."""
    data = await api(connection.query, {**connection.variables(parent_id), "first": 2})
    edges = connection.edges(data)
    assert len(edges) == 2
    return edges[1]["cursor"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", CONNECTIONS)
async def test_a_real_cursor_is_taken_in_both_directions(
    api: GraphQLClient, parent_id: int, name: str
) -> None:
    # given the cursor of a connection's second row
    connection = CONNECTIONS[name]
    cursor = await real_cursor(api, connection, parent_id)
    # when the page after it is asked for, and (where the connection has them) the one before
    after = await api(connection.query, {**connection.variables(parent_id), "after": cursor})
    # then each holds the rows on its side
    assert len(connection.edges(after)) >= 1
    assert cursor not in [edge["cursor"] for edge in connection.edges(after)]
    if connection.backwards:
        before = await api(
            connection.query, {**connection.variables(parent_id), "last": 5, "before": cursor}
        )
        assert len(connection.edges(before)) == 1


@pytest.mark.parametrize("name", CONNECTIONS)
async def test_tampered_cursors_are_clear_errors(
    api: GraphQLClient, parent_id: int, name: str
) -> None:
    # given a real cursor of the connection
    connection = CONNECTIONS[name]
    real = decode(await real_cursor(api, connection, parent_id))
    refused_otherwise: dict[str, Any] = {}
    for case, tamper in {**ANY_CONNECTION, **connection.cases}.items():
        # when it is changed by hand and used to continue the list forwards (and backwards,
        # where the list can)
        tampered = tamper(real)
        directions = [{"first": 2, "after": tampered}]
        if connection.backwards:
            directions.append({"last": 2, "before": tampered})
        for direction in directions:
            variables = {**connection.variables(parent_id), **direction}
            body = (await api.post(connection.query, variables)).json()
            # then the request is refused with a code and a message about that argument
            errors = body.get("errors") or [{}]
            argument = "after" if "after" in direction else "before"
            seen = (
                error_codes(errors),
                "cursor" in errors[0].get("message", ""),
                errors[0].get("extensions", {}).get("field"),
            )
            # (text no database stores is refused before any cursor is read)
            unstorable = "NUL characters" in errors[0].get("message", "")
            if seen != (["BAD_USER_INPUT"], True, argument) and not (
                seen[0] == ["BAD_USER_INPUT"] and unstorable
            ):
                refused_otherwise[f"{case} ({argument})"] = errors
    assert refused_otherwise == {}
