"""Values an outsider may send that were once 500s: each is a clear error and changes nothing.

Moments outside the DateTime range, amounts whose sums or products leave the NUMERIC column,
custom field values no read can show, and loosely written IDs and language tags.
"""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from db.enums import CustomFieldType, EntryKind
from db.models import (
    ApiToken,
    AuditEntry,
    Client,
    CreditEntry,
    CustomFieldDefinition,
    CustomFieldValue,
)
from services.money import MAX_AMOUNT, MAX_BALANCE
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def codes(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


@pytest.fixture
async def admin(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


async def audit_entries(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


# --- DateTime -----------------------------------------------------------------------------

# In year 0 or 10000 once converted to UTC (Python's datetime overflowed), or before 1900.
OUT_OF_RANGE_MOMENTS = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "1899-12-31T23:59:59+00:00",
]
FILTER_MOMENTS = [
    "createdAfter",
    "createdBefore",
    "lastActivityAfter",
    "lastActivityBefore",
    "validTillBefore",
    "validTillAfter",
]
CLIENTS = "query($filter: ClientFilter) { clients(filter: $filter) { totalCount } }"
STATS = "query($filter: ClientFilter) { clientStats(filter: $filter) { total } }"
AUDIT = "query($filter: AuditLogFilter) { auditLog(filter: $filter) { nodes { action } } }"


@dataclass(frozen=True)
class MomentArgument:
    """A DateTime argument: a request that sends it, and what it would have changed."""

    query: str
    variables: Callable[[int, str], dict[str, Any]]


MOMENT_ARGUMENTS: dict[str, MomentArgument] = {
    **{
        f"clients filter {name}": MomentArgument(
            CLIENTS, lambda _, v, name=name: {"filter": {name: v}}
        )
        for name in FILTER_MOMENTS
    },
    "clientStats filter createdAfter": MomentArgument(
        STATS, lambda _, v: {"filter": {"createdAfter": v}}
    ),
    "auditLog filter occurredAfter": MomentArgument(
        AUDIT, lambda _, v: {"filter": {"occurredAfter": v}}
    ),
    "auditLog filter occurredBefore": MomentArgument(
        AUDIT, lambda _, v: {"filter": {"occurredBefore": v}}
    ),
    "clientBlock until": MomentArgument(
        'mutation($id: ID!, $v: DateTime) { clientBlock(id: $id, reason: "r", until: $v) '
        "{ userErrors { code } } }",
        lambda pk, v: {"id": gid("Client", pk), "v": v},
    ),
    "clientCreate validTill": MomentArgument(
        "mutation($input: ClientCreateInput!) { clientCreate(input: $input) "
        "{ userErrors { code } } }",
        lambda _, v: {
            "input": {
                "login": "new.client",
                "password": "a long and honest passphrase",
                "currency": "EUR",
                "email": "new@example.com",
                "validTill": v,
            }
        },
    ),
    "clientUpdate validTill": MomentArgument(
        "mutation($id: ID!, $v: DateTime) { clientUpdate(id: $id, input: {validTill: $v}) "
        "{ userErrors { code } } }",
        lambda pk, v: {"id": gid("Client", pk), "v": v},
    ),
    "creditAdd validTill": MomentArgument(
        'mutation($id: ID!, $v: DateTime) { creditAdd(input: {clientId: $id, amount: "1", '
        "paymentMethod: CASH, validTill: $v}) { userErrors { code } } }",
        lambda pk, v: {"id": gid("Client", pk), "v": v},
    ),
    "tokenCreate expiresAt": MomentArgument(
        'mutation($v: DateTime) { tokenCreate(input: {name: "n", scopes: [CLIENTS_READ], '
        "expiresAt: $v}) { userErrors { code } } }",
        lambda _, v: {"v": v},
    ),
}


async def what_could_change(session: AsyncSession) -> tuple[Any, ...]:
    """Rows any of the mutations above would write."""
    counts = []
    for model in (Client, CreditEntry, ApiToken, AuditEntry):
        counts.append(await session.scalar(select(func.count()).select_from(model)))
    blocked = await session.scalar(
        select(func.count()).select_from(Client).where(Client.blocked_at.is_not(None))
    )
    valid_till = await session.scalar(
        select(func.count()).select_from(Client).where(Client.valid_till.is_not(None))
    )
    return (*counts, blocked, valid_till)


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("moment", OUT_OF_RANGE_MOMENTS)
@pytest.mark.parametrize("name", MOMENT_ARGUMENTS)
async def test_a_moment_outside_the_range_is_a_clear_error(
    api: GraphQLClient, factory: Factory, session: AsyncSession, name: str, moment: str
) -> None:
    # given a client, and a DateTime argument given a moment outside the range
    client = await factory.client()
    argument = MOMENT_ARGUMENTS[name]
    before = await what_could_change(session)
    # when the request is sent
    body = (await api.post(argument.query, argument.variables(client.id, moment))).json()
    # then it is refused with a code and a message giving the range: a top-level
    # BAD_USER_INPUT today (the scalar refuses the variable); should scalar errors become
    # userErrors, a refused mutation lists it there instead
    errors = body.get("errors") or []
    if errors:
        assert error_codes(errors) == ["BAD_USER_INPUT"], errors
        assert "between 1900-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z" in str(errors)
    else:
        [payload] = body["data"].values()
        assert [error["code"] for error in payload["userErrors"]] != []
    # and it changed nothing
    assert await what_could_change(session) == before


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("name", FILTER_MOMENTS)
async def test_the_ends_of_the_range_are_taken(api: GraphQLClient, name: str) -> None:
    for moment in ("1900-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+00:00"):
        assert "totalCount" in (await api(CLIENTS, {"filter": {name: moment}}))["clients"]


@pytest.mark.usefixtures("admin")
async def test_a_moment_at_the_end_of_the_range_is_stored_and_read_back(
    api: GraphQLClient, factory: Factory
) -> None:
    # given a client whose paid access ends at the last moment there is, written with an offset
    client = await factory.client()
    query = (
        "mutation($id: ID!, $v: DateTime) { clientUpdate(id: $id, input: {validTill: $v}) "
        "{ client { validTill } userErrors { code } } }"
    )
    changed = await api(query, {"id": gid("Client", client.id), "v": "9999-12-31T23:00:00-00:59"})
    # then it is kept, and answered in UTC
    assert changed["clientUpdate"] == {
        "client": {"validTill": "9999-12-31T23:59:00+00:00"},
        "userErrors": [],
    }


@pytest.mark.usefixtures("admin")
async def test_an_out_of_range_moment_written_in_the_query_is_refused_before_running(
    api: GraphQLClient,
) -> None:
    errors = await api.errors(
        'query { clients(filter: {createdAfter: "0001-01-01T00:00:00+05:00"}) { totalCount } }'
    )
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert "is out of range" in errors[0]["message"]


# --- Amounts ------------------------------------------------------------------------------

NOTE = (
    "mutation($input: CreditNoteCreateInput!) { creditNoteCreate(input: $input) "
    "{ client { balance { amount } } userErrors { field code } } }"
)
ADD = (
    "mutation($input: CreditAddInput!) { creditAdd(input: $input) "
    "{ client { balance { amount } } userErrors { field code } } }"
)
REVERSE = (
    'mutation($id: ID!) { creditEntryReverse(entryId: $id, reason: "wrong") '
    "{ userErrors { field code } } }"
)


def line(quantity: int, unit: str) -> dict[str, Any]:
    return {"description": "Package", "quantity": quantity, "unitAmount": unit}


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    ("lines", "error"),
    [
        # 10,000 x 10^12: each factor within its bound, the product 10^16 beyond the column
        ([line(10_000, str(MAX_AMOUNT))], (["input", "lines", "0"], "AMOUNT_TOO_LARGE")),
        ([line(-10_000, str(MAX_AMOUNT))], (["input", "lines", "0"], "AMOUNT_TOO_LARGE")),
        ([line(2, "500000000000.01")], (["input", "lines", "0"], "AMOUNT_TOO_LARGE")),
        # lines within the bound whose sum is not
        ([line(1, str(MAX_AMOUNT))] * 2, (["input", "lines"], "AMOUNT_TOO_LARGE")),
        ([line(10_001, "1")], (["input", "lines", "0", "quantity"], "OUT_OF_RANGE")),
        (
            [line(1, "1000000000000.01")],
            (["input", "lines", "0", "unitAmount"], "AMOUNT_TOO_LARGE"),
        ),
    ],
)
async def test_credit_note_lines_and_totals_stay_within_the_column(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    lines: list[dict[str, Any]],
    error: tuple[list[str], str],
) -> None:
    # given a client
    client = await factory.client(credit_limit=MAX_AMOUNT)
    before = await audit_entries(session)
    # when a credit note's line or total leaves the bounds
    note = await api(NOTE, {"input": {"clientId": gid("Client", client.id), "lines": lines}})
    # then it is refused on the right path, and nothing was posted
    assert codes(note["creditNoteCreate"]) == [error]
    assert await session.scalar(select(func.count()).select_from(CreditEntry)) == 0
    assert await audit_entries(session) == before


@pytest.mark.usefixtures("admin")
async def test_the_largest_line_is_taken(api: GraphQLClient, factory: Factory) -> None:
    client = await factory.client()
    note = await api(
        NOTE,
        {"input": {"clientId": gid("Client", client.id), "lines": [line(10_000, "100000000")]}},
    )
    assert note["creditNoteCreate"] == {
        "client": {"balance": {"amount": "1000000000000.00"}},
        "userErrors": [],
    }


@pytest.mark.usefixtures("admin")
async def test_a_balance_stays_within_its_bound(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given a client one unit below the largest balance
    client = await factory.client(balance=MAX_BALANCE - 1)
    gid_ = gid("Client", client.id)
    # when a payment, or a credit note, would take it past
    paid = await api(ADD, {"input": {"clientId": gid_, "amount": "2", "paymentMethod": "CASH"}})
    noted = await api(NOTE, {"input": {"clientId": gid_, "lines": [line(1, "2")]}})
    # then each is refused on the input that sets the amount, and the balance stays
    assert codes(paid["creditAdd"]) == [(["input", "amount"], "AMOUNT_TOO_LARGE")]
    assert codes(noted["creditNoteCreate"]) == [(["input", "lines"], "AMOUNT_TOO_LARGE")]
    assert await session.scalar(select(func.count()).select_from(CreditEntry)) == 0
    # while reaching the bound exactly is fine
    exact = await api(ADD, {"input": {"clientId": gid_, "amount": "1", "paymentMethod": "CASH"}})
    assert exact["creditAdd"] == {
        "client": {"balance": {"amount": f"{MAX_BALANCE}.00"}},
        "userErrors": [],
    }


@pytest.mark.usefixtures("admin")
async def test_a_reversal_that_would_pass_the_bound_is_refused(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    # given a deduction of 100 from a client whose balance has since reached the bound
    client = await factory.client(balance=MAX_BALANCE - 50)
    deduction = CreditEntry(
        client_id=client.id,
        kind=EntryKind.DEDUCTION,
        amount=Decimal(-100),
        currency="EUR",
        balance_after=MAX_BALANCE - 50,
        created_at=clock(),
    )
    session.add(deduction)
    await session.commit()
    # when it is reversed (+100)
    reversed_ = await api(REVERSE, {"id": gid("CreditEntry", deduction.id)})
    # then it is refused on the entry, and no reversal exists
    assert codes(reversed_["creditEntryReverse"]) == [(["entryId"], "AMOUNT_TOO_LARGE")]
    assert await session.scalar(select(func.count()).select_from(CreditEntry)) == 1


AMOUNT_INPUTS = [
    pytest.param(
        "mutation($id: ID!, $v: Decimal!) { creditAdd(input: {clientId: $id, amount: $v, "
        "paymentMethod: CASH}) { userErrors { field code } } }",
        ["input", "amount"],
        "AMOUNT_TOO_LARGE",
        id="creditAdd amount",
    ),
    pytest.param(
        "mutation($id: ID!, $v: Decimal!) { creditDeduct(input: {clientId: $id, amount: $v, "
        'reason: "r"}) { userErrors { field code } } }',
        ["input", "amount"],
        "AMOUNT_TOO_LARGE",
        id="creditDeduct amount",
    ),
    pytest.param(
        "mutation($id: ID!, $v: Decimal!) { clientUpdate(id: $id, input: {creditLimit: $v}) "
        "{ userErrors { field code } } }",
        ["input", "creditLimit"],
        "AMOUNT_TOO_LARGE",
        id="clientUpdate creditLimit",
    ),
    pytest.param(
        "mutation($id: ID!, $v: Decimal!) { clientPriceAdjustmentSet(id: $id, percent: $v) "
        "{ userErrors { field code } } }",
        ["percent"],
        "OUT_OF_RANGE",
        id="clientPriceAdjustmentSet percent",
    ),
    pytest.param(
        "mutation($id: ID!, $v: Decimal!) { clientUpdate(id: $id, input: "
        "{priceAdjustmentPercent: $v}) { userErrors { field code } } }",
        ["input", "priceAdjustmentPercent"],
        "OUT_OF_RANGE",
        id="clientUpdate priceAdjustmentPercent",
    ),
    pytest.param(
        'mutation($v: Decimal!) { packageCreate(input: {name: "P", prices: '
        '[{currency: "EUR", amount: $v}]}) { userErrors { field code } } }',
        ["input", "prices", "0", "amount"],
        "AMOUNT_TOO_LARGE",
        id="packageCreate price",
    ),
]


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("value", ["1000000000000.01", "99999999999999999999999999999999"])
@pytest.mark.parametrize(("query", "path", "code"), AMOUNT_INPUTS)
async def test_every_amount_input_is_bounded(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    query: str,
    path: list[str],
    code: str,
    value: str,
) -> None:
    client = await factory.client(balance=MAX_AMOUNT)
    before = await audit_entries(session)
    data = await api(query, {"id": gid("Client", client.id), "v": value})
    [payload] = data.values()
    assert codes(payload) == [(path, code)]
    assert await audit_entries(session) == before


BALANCE_FILTER = "query($v: Decimal) { clients(filter: {balanceBelow: $v}) { totalCount } }"


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", "-Infinity", "1e30", "100000000000000.0001", "0.00001", "-1e400"],
)
async def test_a_balance_filter_the_column_cannot_compare_is_a_clear_error(
    api: GraphQLClient, value: str
) -> None:
    errors = await api.errors(BALANCE_FILTER, {"v": value})
    assert error_codes(errors) == ["BAD_USER_INPUT"]


@pytest.mark.usefixtures("admin")
async def test_balance_filters_within_the_bound_are_taken(
    api: GraphQLClient, factory: Factory
) -> None:
    await factory.client(balance=Decimal("-12.5"), credit_limit=Decimal(20))
    for value, found in (("-12.4999", 1), ("-12.5", 0), (str(MAX_BALANCE), 1)):
        assert (await api(BALANCE_FILTER, {"v": value}))["clients"]["totalCount"] == found


# --- Custom fields ------------------------------------------------------------------------

UPDATE_FIELDS = (
    "mutation($id: ID!, $fields: [CustomFieldValueInput!]) { clientUpdate(id: $id, input: "
    "{customFields: $fields}) { userErrors { field code } } }"
)
READ_FIELDS = "query($id: ID!) { client(id: $id) { customFields { definition { key } value } } }"
LIST_FIELDS = "{ clients(first: 10) { nodes { login customFields { definition { key } value } } } }"


@pytest.fixture
async def fields(session: AsyncSession, clock: FakeClock) -> dict[str, int]:
    """One custom field of every type, by key."""
    definitions = {
        "number": CustomFieldDefinition(
            key="number", label="Number", type=CustomFieldType.NUMBER, created_at=clock()
        ),
        "text": CustomFieldDefinition(
            key="text", label="Text", type=CustomFieldType.TEXT, created_at=clock()
        ),
        "date": CustomFieldDefinition(
            key="date", label="Date", type=CustomFieldType.DATE, created_at=clock()
        ),
        "flag": CustomFieldDefinition(
            key="flag", label="Flag", type=CustomFieldType.BOOLEAN, created_at=clock()
        ),
        "tier": CustomFieldDefinition(
            key="tier",
            label="Tier",
            type=CustomFieldType.SELECT,
            options=["gold"],
            created_at=clock(),
        ),
    }
    session.add_all(definitions.values())
    await session.commit()
    return {key: definition.id for key, definition in definitions.items()}


@pytest.mark.usefixtures("admin", "fields")
@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("number", 2**70, "OUT_OF_RANGE"),
        ("number", 1e308, "OUT_OF_RANGE"),
        ("number", -(10**15) - 1, "OUT_OF_RANGE"),
        ("number", 10**15 + 0.5, "OUT_OF_RANGE"),
        ("number", "12", "CUSTOM_FIELD_INVALID"),
        ("number", "9" * 10_000, "CUSTOM_FIELD_INVALID"),
        ("number", True, "CUSTOM_FIELD_INVALID"),
        ("number", [1], "CUSTOM_FIELD_INVALID"),
        ("text", "x" * 1001, "TOO_LONG"),
        ("text", 5, "CUSTOM_FIELD_INVALID"),
        ("date", "2026-02-30", "CUSTOM_FIELD_INVALID"),
        ("date", "0000-01-01", "CUSTOM_FIELD_INVALID"),
        ("date", "\uff12\uff10\uff12\uff16-01-01", "CUSTOM_FIELD_INVALID"),  # full-width digits
        ("date", "2026-1-1", "CUSTOM_FIELD_INVALID"),
        ("flag", "true", "CUSTOM_FIELD_INVALID"),
        ("flag", 1, "CUSTOM_FIELD_INVALID"),
        ("tier", "platinum", "CUSTOM_FIELD_INVALID"),
        ("tier", ["gold"], "CUSTOM_FIELD_INVALID"),
    ],
)
async def test_custom_field_values_are_checked_on_write(
    api: GraphQLClient, factory: Factory, session: AsyncSession, key: str, value: Any, code: str
) -> None:
    client = await factory.client()
    before = await audit_entries(session)
    data = await api(
        UPDATE_FIELDS, {"id": gid("Client", client.id), "fields": [{"key": key, "value": value}]}
    )
    assert codes(data["clientUpdate"]) == [(["input", "customFields", "0"], code)]
    assert await session.scalar(select(func.count()).select_from(CustomFieldValue)) == 0
    assert await audit_entries(session) == before


@pytest.mark.usefixtures("admin", "fields")
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_are_refused(
    api: GraphQLClient, factory: Factory, literal: str
) -> None:
    # given a request body whose JSON holds a NaN or Infinity literal (Python's json would read
    # them)
    client = await factory.client()
    body = json.dumps(
        {
            "query": UPDATE_FIELDS,
            "variables": {
                "id": gid("Client", client.id),
                "fields": [{"key": "number", "value": "__v__"}],
            },
        }
    ).replace('"__v__"', literal)
    response = await api.http.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    # then the body is not JSON (RFC 8259 has no such literals): refused before anything reads it
    assert response.status_code == 400
    assert error_codes(response.json()["errors"]) == ["BAD_REQUEST"]


@pytest.mark.usefixtures("admin")
async def test_the_ends_of_the_number_range_are_taken(
    api: GraphQLClient, factory: Factory, fields: dict[str, int]
) -> None:
    client = await factory.client()
    for value in (10**15, -(10**15), 0.000001, -1.5):
        data = await api(
            UPDATE_FIELDS,
            {"id": gid("Client", client.id), "fields": [{"key": "number", "value": value}]},
        )
        assert data["clientUpdate"]["userErrors"] == []
        read = await api(READ_FIELDS, {"id": gid("Client", client.id)})
        values = {f["definition"]["key"]: f["value"] for f in read["client"]["customFields"]}
        assert values["number"] == value


@pytest.mark.usefixtures("admin")
async def test_a_bad_stored_value_reads_as_null_with_a_warning(
    api: GraphQLClient, factory: Factory, session: AsyncSession, fields: dict[str, int]
) -> None:
    # given values written straight into the table, around the rules: a number past 64 bits
    # (no JSON encoder writes it), text in a NUMBER field, a removed option, a non-date
    client = await factory.client(login="bad.values")
    stored = {"number": 2**70, "text": 42, "date": "yesterday", "tier": "platinum", "flag": True}
    session.add_all(
        CustomFieldValue(client_id=client.id, definition_id=fields[key], value=value)
        for key, value in stored.items()
    )
    await session.commit()
    # when the client is read, alone and in a list page
    with capture_logs() as logs:
        one = await api(READ_FIELDS, {"id": gid("Client", client.id)})
        page = await api(LIST_FIELDS)
    # then the read works: each bad value is null, the good one is shown
    expected = {"number": None, "text": None, "date": None, "tier": None, "flag": True}
    read = {f["definition"]["key"]: f["value"] for f in one["client"]["customFields"]}
    assert read == expected
    [row] = [node for node in page["clients"]["nodes"] if node["login"] == "bad.values"]
    assert {f["definition"]["key"]: f["value"] for f in row["customFields"]} == expected
    # and each bad value is reported in the log, for an operator to repair
    warned = [e for e in logs if e["event"] == "custom_field_value_unreadable"]
    assert {e["key"] for e in warned} == {"number", "text", "date", "tier"}
    assert all(e["log_level"] == "warning" for e in warned)


# --- Global IDs ---------------------------------------------------------------------------

NODE = "query($id: ID!) { node(id: $id) { id ... on Client { login } } }"


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(base64.b64encode(b"Client:00000001").decode(), id="leading zeros"),
        pytest.param(base64.b64encode("Client:\u0661".encode()).decode(), id="Arabic-Indic one"),
        pytest.param(base64.b64encode("Client:\uff11".encode()).decode(), id="full-width one"),
        pytest.param(base64.b64encode(b"Client:+1").decode(), id="plus sign"),
        pytest.param(base64.b64encode(b"Client: 1").decode(), id="space"),
        pytest.param(base64.b64encode(b"Client:1_0").decode(), id="underscore"),
        pytest.param(base64.b64encode(b"Client:0").decode(), id="zero"),
        pytest.param(base64.b64encode(b"Client:-1").decode(), id="negative"),
        pytest.param(base64.b64encode(b"Client:9223372036854775808").decode(), id="past BIGINT"),
        pytest.param(base64.b64encode(b"Client:1:2").decode(), id="two colons"),
        pytest.param(base64.b64encode(b":1").decode(), id="no type"),
        pytest.param(base64.b64encode("Cl\u0131ent:1".encode()).decode(), id="dotless i"),
        pytest.param("Q2xpZW50OjF=", id="other base64 of the same bytes"),
        pytest.param("Q2xpZW50OjE", id="padding left out"),
        pytest.param("Q2xpZW50OjE=\n", id="trailing newline"),
        pytest.param("Q2xp ZW50OjE=", id="space inside"),
        pytest.param("Q2xpZW50OjE=" * 20, id="too long"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_loosely_written_id_is_malformed(
    api: GraphQLClient, factory: Factory, value: str
) -> None:
    await factory.client()  # there is a client 1 (at least) for a loose reading to find
    errors = await api.errors(NODE, {"id": value})
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert "is not a valid ID" in errors[0]["message"]


@pytest.mark.usefixtures("admin")
async def test_the_ids_we_write_are_read_back(api: GraphQLClient, factory: Factory) -> None:
    client = await factory.client(login="exact")
    assert (await api(NODE, {"id": gid("Client", client.id)}))["node"]["login"] == "exact"
    # the largest key there can be is well formed (no such client: null)
    assert (await api(NODE, {"id": gid("Client", 2**63 - 1)}))["node"] is None


# --- Language tags ------------------------------------------------------------------------

LANGUAGE = (
    "mutation($id: ID!, $v: String) { clientUpdate(id: $id, input: {language: $v}) "
    "{ client { language } userErrors { field code } } }"
)


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("en-" + "a" * 4995, "TOO_LONG"),  # was stored as "en"
        ("e" * 36, "TOO_LONG"),
        ("und", "INVALID_LANGUAGE"),  # Babel reads it as en-US
        ("en-ZZ", "INVALID_LANGUAGE"),  # Babel reads it as en-US
        ("en-Cyrl", "INVALID_LANGUAGE"),  # Babel drops the script
        ("de-CH-1996", "INVALID_LANGUAGE"),  # Babel drops the variant
        ("iw", "INVALID_LANGUAGE"),  # Babel replaces it by he-IL
        ("en-US-x-private", "INVALID_LANGUAGE"),
        ("klingon", "INVALID_LANGUAGE"),
        ("e\u0301n", "INVALID_LANGUAGE"),
    ],
)
async def test_a_language_tag_is_stored_as_given_or_refused(
    api: GraphQLClient, factory: Factory, given: str, code: str
) -> None:
    client = await factory.client(language="fr")
    data = await api(LANGUAGE, {"id": gid("Client", client.id), "v": given})
    assert codes(data["clientUpdate"]) == [(["input", "language"], code)]
    read = await api(
        "query($id: ID!) { client(id: $id) { language } }", {"id": gid("Client", client.id)}
    )
    assert read["client"]["language"] == "fr"


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("PT_br", "pt-BR"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("zh-TW", "zh-TW"),
        ("ca-ES-VALENCIA", "ca-ES-valencia"),
        ("es-419", "es-419"),
        (" de ", "de"),
    ],
)
async def test_a_known_language_tag_is_stored_in_canonical_case(
    api: GraphQLClient, factory: Factory, given: str, stored: str
) -> None:
    client = await factory.client()
    data = await api(LANGUAGE, {"id": gid("Client", client.id), "v": given})
    assert data["clientUpdate"] == {"client": {"language": stored}, "userErrors": []}


@pytest.mark.usefixtures("admin")
async def test_the_timezone_moves_nothing_it_should_not(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # a moment with an offset filters the same instant as its UTC form
    await factory.client(created_at=clock() - timedelta(hours=1))
    for moment in ("2026-06-01T11:00:00+00:00", "2026-06-01T13:00:00+02:00"):
        count = await api(CLIENTS, {"filter": {"createdAfter": moment}})
        assert count["clients"]["totalCount"] == 1


# --- Text no column holds, in query arguments -----------------------------------------------


async def post_raw(
    api: GraphQLClient, query: str, variables: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """The status and body of a request written with escapes, as a lone surrogate must be
    (httpx cannot encode one)."""
    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    return response.status_code, response.json()


def refused_unread(status: int, body: dict[str, Any], value: str) -> bool:
    """Whether text no database stores was refused before anything read it: a lone surrogate
    makes the body invalid JSON (400), a NUL is refused before execution."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return status == 400 and error_codes(body["errors"]) == ["BAD_REQUEST"]
    return (
        status == 200
        and body.get("data") is None
        and error_codes(body["errors"]) == ["BAD_USER_INPUT"]
        and "NUL characters" in body["errors"][0]["message"]
    )


UNSTORABLE = ["a\x00b", "\ud800", "x\udfffy"]
UNSTORABLE_CHARACTERS = frozenset("\x00\ud800\udfff")


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("value", UNSTORABLE)
@pytest.mark.parametrize(
    "query",
    [
        "query($v: String!) { clients(search: $v) { totalCount } }",
        "query($v: String!) { clients(filter: {email: $v}) { totalCount } }",
        "query($v: String!) { clients(filter: {login: $v}) { totalCount } }",
        "query($v: String!) { clientStats(search: $v) { total } }",
        "query($v: String!) { auditLog(filter: {actions: [$v]}) { nodes { action } } }",
    ],
)
async def test_a_search_for_what_no_column_holds_is_a_clear_error(
    api: GraphQLClient, query: str, value: str
) -> None:
    status, body = await post_raw(api, query, {"v": value})
    assert refused_unread(status, body, value), body


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("value", [*UNSTORABLE, "x" * 65, "\u212aate"])
async def test_a_login_no_client_can_have_finds_nobody(
    api: GraphQLClient, factory: Factory, value: str
) -> None:
    await factory.client(login="kate")  # what "\u212aate" (a Kelvin sign) lower-cases to
    status, body = await post_raw(
        api, "query($v: String!) { client(login: $v) { id } }", {"v": value}
    )
    if value in UNSTORABLE:
        assert refused_unread(status, body, value), body
    else:
        assert body == {"data": {"client": None}, "extensions": body.get("extensions")}


STAFF_LOGIN = (
    "mutation($e: String!, $p: String!) { staffLogin(email: $e, password: $p) "
    "{ token userErrors { field code } } }"
)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("a\x00@clientdesk.test", "a password"),
        ("ada@clientdesk.test", "a\x00password"),
        ("\ud800@clientdesk.test", "a password"),
        ("ada@clientdesk.test", "\ud800 password"),
        # the account's bucket in the rate limiter is named after the address: a long one
        # still fits the limiter's 200-character key
        ("a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + ".com", "a password"),
    ],
)
async def test_sign_in_with_what_no_account_holds_is_refused_alike(
    api: GraphQLClient, factory: Factory, email: str, password: str
) -> None:
    await factory.staff(email="ada@clientdesk.test", password="the right password")
    status, body = await post_raw(api, STAFF_LOGIN, {"e": email, "p": password})
    if any(c in UNSTORABLE_CHARACTERS for c in email + password):
        assert refused_unread(status, body, email + password), body
        return
    assert body["data"]["staffLogin"] == {
        "token": None,
        "userErrors": [{"field": ["password"], "code": "INVALID_CREDENTIALS"}],
    }


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("length", [72, 73, 256, 1000])
async def test_any_password_can_be_rated(api: GraphQLClient, length: int) -> None:
    # zxcvbn raises past 72 characters; the rating reads the first 72
    rated = await api(
        "query($p: String!) { passwordStrength(password: $p) { score meetsPolicy } }",
        {"p": ("Zq!9 horse battery " * 60)[:length]},
    )
    assert rated["passwordStrength"] == {"score": 4, "meetsPolicy": length <= 256}


@pytest.mark.usefixtures("admin")
async def test_balance_totals_are_exact_beyond_what_one_integer_holds(
    api: GraphQLClient, factory: Factory
) -> None:
    # given balances at the limit, whose total passes 2**63 units of 0.0001 (SQLite's SUM)
    for n in range(100):
        await factory.client(login=f"rich{n}", currency="EUR", balance=MAX_BALANCE)
    await factory.client(
        login="poor", currency="EUR", balance=Decimal("-0.01"), credit_limit=Decimal(1)
    )
    await factory.client(login="odd", currency="EUR", balance=Decimal("123456789.1234"))
    # when their totals are asked for
    data = await api("{ clientStats { balances { amount currency } } }")
    # then the sum is exact (to the currency's cents: the API shows EUR with two decimals)
    total = 100 * MAX_BALANCE - Decimal("0.01") + Decimal("123456789.1234")
    assert data["clientStats"]["balances"] == [
        {"amount": str(total.quantize(Decimal("0.01"))), "currency": "EUR"}
    ]


@pytest.mark.usefixtures("admin")
async def test_a_stored_integer_beyond_64_bits_never_breaks_an_answer(
    api: GraphQLClient, session: AsyncSession, clock: FakeClock
) -> None:
    from db.models import AuditEntry

    # given an audit entry written before values were checked, holding 2**70
    session.add(
        AuditEntry(
            occurred_at=clock(),
            action="client.update",
            target_type="Client",
            after={"employees": 2**70},
        )
    )
    await session.commit()
    # when it is read
    data = await api("{ auditLog(first: 1) { nodes { action after } } }")
    # then it is answered, the number whole
    assert data["auditLog"]["nodes"][0]["after"] == {"employees": 2**70}
