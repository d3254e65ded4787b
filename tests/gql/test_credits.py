"""Money mutations: payments, deductions, credit notes, reversals, idempotency, pricing."""

import base64
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import Scope, StaffRole
from db.models import AuditEntry, Client, CreditEntry, Package, PackagePrice
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

ENTRY = """
  entry {
    id kind amount { amount currency } balanceAfter { amount } paymentMethod paymentReference
    comment validTillSet reverses { id }
    lines { description quantity unitAmount { amount } amount { amount } package { name } }
  }
  client { balance { amount } validTill }
  replayed
  userErrors { field code message }
"""
ADD = f"mutation($input: CreditAddInput!) {{ creditAdd(input: $input) {{ {ENTRY} }} }}"
DEDUCT = f"mutation($input: CreditDeductInput!) {{ creditDeduct(input: $input) {{ {ENTRY} }} }}"
NOTE = (
    f"mutation($input: CreditNoteCreateInput!) {{ creditNoteCreate(input: $input) {{ {ENTRY} }} }}"
)
REVERSE = f"""
mutation($id: ID!, $reason: String!, $key: String) {{
  creditEntryReverse(entryId: $id, reason: $reason, idempotencyKey: $key) {{ {ENTRY} }}
}}
"""


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def codes(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


@pytest.fixture
async def admin(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


async def ledger_is_consistent(session: AsyncSession, client_id: int) -> Decimal:
    """The stored balance equals the ledger's sum, and the last balanceAfter."""
    client = await session.scalar(
        select(Client).where(Client.id == client_id).execution_options(populate_existing=True)
    )
    assert client is not None
    total = await session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
            CreditEntry.client_id == client_id
        )
    )
    last = await session.scalar(
        select(CreditEntry.balance_after)
        .where(CreditEntry.client_id == client_id)
        .order_by(CreditEntry.id.desc())
        .limit(1)
    )
    assert client.balance == Decimal(total)
    assert last is None or last == client.balance
    assert client.balance >= -client.credit_limit
    return client.balance


async def add(api: GraphQLClient, client_id: int, amount: str, **extra: Any) -> dict[str, Any]:
    input_ = {
        "clientId": gid("Client", client_id),
        "amount": amount,
        "paymentMethod": "BANK_TRANSFER",
        **extra,
    }
    return (await api(ADD, {"input": input_}))["creditAdd"]  # type: ignore[no-any-return]


async def deduct(api: GraphQLClient, client_id: int, amount: str, **extra: Any) -> dict[str, Any]:
    input_ = {"clientId": gid("Client", client_id), "amount": amount, "reason": "Usage", **extra}
    return (await api(DEDUCT, {"input": input_}))["creditDeduct"]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("admin")
async def test_payment_then_deduction_within_the_limit(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    client = await factory.client(login="kwd", currency="KWD", credit_limit=Decimal("5.000"))
    paid = await add(api, client.id, "10.125", paymentReference="SWIFT-1", comment="March")
    assert paid["userErrors"] == []
    entry = paid["entry"]
    assert (entry["kind"], entry["amount"], entry["balanceAfter"]) == (
        "PAYMENT",
        {"amount": "10.125", "currency": "KWD"},
        {"amount": "10.125"},
    )
    assert (entry["paymentMethod"], entry["paymentReference"], entry["comment"]) == (
        "BANK_TRANSFER",
        "SWIFT-1",
        "March",
    )
    assert paid["client"]["balance"] == {"amount": "10.125"}
    assert paid["replayed"] is False
    # down to the credit limit, not past it
    taken = await deduct(api, client.id, "15.125")
    assert taken["entry"]["amount"] == {"amount": "-15.125", "currency": "KWD"}
    assert taken["client"]["balance"] == {"amount": "-5.000"}
    refused = await deduct(api, client.id, "0.001")
    assert codes(refused) == [(["input", "amount"], "CREDIT_LIMIT_EXCEEDED")]
    assert "below the credit limit of -5.000 KWD" in refused["userErrors"][0]["message"]
    assert await ledger_is_consistent(session, client.id) == Decimal("-5.000")


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    ("currency", "amount", "code"),
    [
        ("JPY", "100.5", "INVALID_AMOUNT_PRECISION"),
        ("EUR", "0.001", "INVALID_AMOUNT_PRECISION"),
        ("EUR", "0", "AMOUNT_NOT_POSITIVE"),
        ("EUR", "-5", "AMOUNT_NOT_POSITIVE"),
        ("EUR", "NaN", "INVALID_AMOUNT"),
        ("EUR", "-Infinity", "INVALID_AMOUNT"),
        ("EUR", "1E+2", "INVALID_AMOUNT"),
        ("EUR", "1000000000000.01", "AMOUNT_TOO_LARGE"),
    ],
)
async def test_amounts_are_never_rounded(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    currency: str,
    amount: str,
    code: str,
) -> None:
    client = await factory.client(login="money", currency=currency)
    for operation in (add, deduct):
        payload = await operation(api, client.id, amount)
        assert codes(payload) == [(["input", "amount"], code)]
    assert await session.scalar(select(func.count()).select_from(CreditEntry)) == 0


@pytest.mark.usefixtures("admin")
async def test_payment_may_extend_paid_access(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    until = clock() + timedelta(days=30)
    client = await factory.client(login="billing", valid_till=until)
    later = (until + timedelta(days=365)).isoformat()
    paid = await add(api, client.id, "120.00", validTill=later)
    assert paid["client"]["validTill"] == later
    assert paid["entry"]["validTillSet"] == later
    shorter = await add(api, client.id, "10.00", validTill=until.isoformat())
    assert codes(shorter) == [(["input", "validTill"], "INVALID")]


async def reverse(api: GraphQLClient, entry_id: str) -> dict[str, Any]:
    return (await api(REVERSE, {"id": entry_id, "reason": "Bounced"}))[  # type: ignore[no-any-return]
        "creditEntryReverse"
    ]


@pytest.mark.usefixtures("admin")
async def test_reversing_a_payment_takes_back_the_access_it_paid_for(
    api: GraphQLClient, factory: Factory, clock: FakeClock, session: AsyncSession
) -> None:
    # given access until day 10, extended by a payment to day 40
    now = clock()
    client = await factory.client(login="bounced", valid_till=now + timedelta(days=10))
    paid = await add(api, client.id, "30.00", validTill=(now + timedelta(days=40)).isoformat())
    # when the payment is reversed
    reversed_ = await reverse(api, paid["entry"]["id"])
    # then access ends on day 10 again, recorded on the reversal
    day_10 = (now + timedelta(days=10)).isoformat()
    assert reversed_["userErrors"] == []
    assert reversed_["client"]["validTill"] == day_10
    assert reversed_["entry"]["validTillSet"] == day_10
    audit = await session.scalar(
        select(AuditEntry)
        .where(AuditEntry.action == "credit.reverse")
        .order_by(AuditEntry.id.desc())
    )
    assert audit is not None
    assert audit.before is not None
    assert audit.after is not None
    assert (audit.before["valid_till"], audit.after["valid_till"]) == (
        (now + timedelta(days=40)).isoformat(),
        day_10,
    )


@pytest.mark.usefixtures("admin")
async def test_reversing_a_payment_keeps_a_later_extension(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given access until day 10, a payment to day 40, and a later one to day 70
    now = clock()
    client = await factory.client(login="twice", valid_till=now + timedelta(days=10))
    first = await add(api, client.id, "30.00", validTill=(now + timedelta(days=40)).isoformat())
    await add(api, client.id, "30.00", validTill=(now + timedelta(days=70)).isoformat())
    # when the first is reversed, only its 30 days go: the later payment's stay
    reversed_ = await reverse(api, first["entry"]["id"])
    assert reversed_["client"]["validTill"] == (now + timedelta(days=40)).isoformat()


@pytest.mark.usefixtures("admin")
async def test_reversing_a_payment_never_moves_access_before_the_payment(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    now = clock()
    for login, before in (("unset", None), ("expired", now - timedelta(days=5))):
        # given access unset or already over, and a payment for 30 days
        client = await factory.client(login=login, valid_till=before)
        paid = await add(api, client.id, "9.00", validTill=(now + timedelta(days=30)).isoformat())
        # when it is reversed, access ends when the payment was made (never unlimited again)
        reversed_ = await reverse(api, paid["entry"]["id"])
        assert reversed_["client"]["validTill"] == now.isoformat(), login
    # a payment that paid for no access leaves validTill alone
    plain = await factory.client(login="plain", valid_till=now + timedelta(days=3))
    paid = await add(api, plain.id, "9.00")
    reversed_ = await reverse(api, paid["entry"]["id"])
    assert reversed_["client"]["validTill"] == (now + timedelta(days=3)).isoformat()
    assert reversed_["entry"]["validTillSet"] is None


@pytest.mark.usefixtures("admin")
async def test_credit_note_with_negative_package_lines(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    client = await factory.client(
        login="note",
        currency="EUR",
        price_adjustment_percent=Decimal("10"),
        credit_limit=Decimal(100),
    )
    package = Package(name="SMS 1k", created_at=clock(), updated_at=clock())
    session.add(package)
    await session.flush()
    session.add(PackagePrice(package_id=package.id, currency="EUR", amount=Decimal("9.99")))
    await session.commit()
    note = (
        await api(
            NOTE,
            {
                "input": {
                    "clientId": gid("Client", client.id),
                    "comment": "Returned packages",
                    "lines": [
                        {"description": "Goodwill", "quantity": 1, "unitAmount": "5.00"},
                        {
                            "packageId": gid("Package", package.id),
                            "quantity": -2,
                        },  # at the client's price
                        {"description": "Setup fee refund", "quantity": 3, "unitAmount": "-1.50"},
                    ],
                }
            },
        )
    )["creditNoteCreate"]
    assert note["userErrors"] == []
    # 5.00 - 2 x 10.99 (9.99 + 10 %, half-up) - 4.50 = -21.48
    assert note["entry"]["amount"] == {"amount": "-21.48", "currency": "EUR"}
    assert note["entry"]["kind"] == "CREDIT_NOTE"
    assert [
        (
            line["description"],
            line["quantity"],
            line["unitAmount"]["amount"],
            line["amount"]["amount"],
        )
        for line in note["entry"]["lines"]
    ] == [
        ("Goodwill", 1, "5.00", "5.00"),
        ("SMS 1k", -2, "10.99", "-21.98"),
        ("Setup fee refund", 3, "-1.50", "-4.50"),
    ]
    assert note["client"]["balance"] == {"amount": "-21.48"}
    await ledger_is_consistent(session, client.id)


@pytest.mark.usefixtures("admin")
async def test_credit_note_errors(api: GraphQLClient, factory: Factory) -> None:
    client = await factory.client(login="note", currency="JPY")
    note = (
        await api(
            NOTE,
            {
                "input": {
                    "clientId": gid("Client", client.id),
                    "lines": [
                        {"description": "x", "quantity": 0, "unitAmount": "5"},
                        {"description": "y", "unitAmount": "1.5"},
                        {"quantity": 1},
                        {"packageId": gid("Package", 10**9)},
                    ],
                }
            },
        )
    )["creditNoteCreate"]
    assert codes(note) == [
        (["input", "lines", "0", "quantity"], "INVALID"),
        (["input", "lines", "1", "unitAmount"], "INVALID_AMOUNT_PRECISION"),
        (["input", "lines", "2", "unitAmount"], "REQUIRED"),
        (["input", "lines", "3", "packageId"], "NOT_FOUND"),
    ]
    empty = (await api(NOTE, {"input": {"clientId": gid("Client", client.id), "lines": []}}))[
        "creditNoteCreate"
    ]
    assert codes(empty) == [(["input", "lines"], "INVALID")]


@pytest.mark.usefixtures("admin")
async def test_reversing_an_incorrect_payment_once(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    client = await factory.client(login="oops", currency="EUR")
    paid = await add(api, client.id, "99.90")
    entry_id = paid["entry"]["id"]
    reversed_ = (await api(REVERSE, {"id": entry_id, "reason": "Wrong client"}))[
        "creditEntryReverse"
    ]
    assert reversed_["userErrors"] == []
    assert (reversed_["entry"]["kind"], reversed_["entry"]["amount"]["amount"]) == (
        "REVERSAL",
        "-99.90",
    )
    assert reversed_["entry"]["reverses"] == {"id": entry_id}
    assert reversed_["entry"]["comment"] == "Wrong client"
    assert reversed_["client"]["balance"] == {"amount": "0.00"}
    twice = (await api(REVERSE, {"id": entry_id, "reason": "Again"}))["creditEntryReverse"]
    assert codes(twice) == [(["entryId"], "ALREADY_REVERSED")]
    of_reversal = (await api(REVERSE, {"id": reversed_["entry"]["id"], "reason": "Undo"}))[
        "creditEntryReverse"
    ]
    assert codes(of_reversal) == [(["entryId"], "NOT_REVERSIBLE")]
    missing = (await api(REVERSE, {"id": gid("CreditEntry", 10**9), "reason": "x"}))[
        "creditEntryReverse"
    ]
    assert codes(missing) == [(["entryId"], "NOT_FOUND")]
    no_reason = (await api(REVERSE, {"id": entry_id, "reason": " "}))["creditEntryReverse"]
    assert (["reason"], "REQUIRED") in codes(no_reason)
    assert await ledger_is_consistent(session, client.id) == 0


@pytest.mark.usefixtures("admin")
async def test_a_reversal_that_would_overdraw_is_refused(
    api: GraphQLClient, factory: Factory
) -> None:
    client = await factory.client(login="spent", currency="EUR")
    paid = await add(api, client.id, "50.00")
    await deduct(api, client.id, "40.00")
    refused = (await api(REVERSE, {"id": paid["entry"]["id"], "reason": "Bounced"}))[
        "creditEntryReverse"
    ]
    assert codes(refused) == [(["entryId"], "CREDIT_LIMIT_EXCEEDED")]


@pytest.mark.usefixtures("admin")
async def test_idempotency_key_applies_once(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    client = await factory.client(login="retry", currency="EUR")
    first = await add(api, client.id, "25.00", idempotencyKey="pay-123")
    again = await add(api, client.id, "25.00", idempotencyKey="pay-123")
    assert again["replayed"] is True
    assert again["entry"]["id"] == first["entry"]["id"]
    assert again["client"]["balance"] == {"amount": "25.00"}
    assert await session.scalar(select(func.count()).select_from(CreditEntry)) == 1
    # the same key with a different request is refused, and changes nothing
    other = await add(api, client.id, "26.00", idempotencyKey="pay-123")
    assert codes(other) == [(["input", "idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")]
    other_kind = await deduct(api, client.id, "25.00", idempotencyKey="pay-123")
    assert codes(other_kind) == [(["input", "idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")]
    # keys belong to the staff user: another one may use the same string
    colleague = await factory.token(await factory.staff(role=StaffRole.ADMIN))
    theirs = (
        await api(
            ADD,
            {
                "input": {
                    "clientId": gid("Client", client.id),
                    "amount": "1.00",
                    "paymentMethod": "CASH",
                    "idempotencyKey": "pay-123",
                }
            },
            token=colleague,
        )
    )["creditAdd"]
    assert theirs["replayed"] is False
    # after 24 hours a key is forgotten
    clock.advance(timedelta(hours=24))
    fresh = await add(api, client.id, "26.00", idempotencyKey="pay-123")
    assert (fresh["replayed"], fresh["userErrors"]) == (False, [])
    assert await ledger_is_consistent(session, client.id) == Decimal("52.00")


@pytest.mark.usefixtures("admin")
async def test_a_refused_request_does_not_use_up_its_key(
    api: GraphQLClient, factory: Factory
) -> None:
    client = await factory.client(login="later", currency="EUR")
    refused = await deduct(api, client.id, "10.00", idempotencyKey="d-1")
    assert codes(refused) == [(["input", "amount"], "CREDIT_LIMIT_EXCEEDED")]
    await add(api, client.id, "10.00")
    retried = await deduct(api, client.id, "10.00", idempotencyKey="d-1")
    assert (retried["replayed"], retried["userErrors"]) == (False, [])


@pytest.mark.usefixtures("admin")
async def test_money_is_audited(api: GraphQLClient, factory: Factory) -> None:
    client = await factory.client(login="audited", currency="EUR")
    await add(api, client.id, "10.00")
    await deduct(api, client.id, "4.00")
    query = """
    query($f: AuditLogFilter) { auditLog(filter: $f) { nodes { action before after reason } } }
    """
    entries = (await api(query, {"f": {"targetId": gid("Client", client.id)}}))["auditLog"]["nodes"]
    assert [(e["action"], e["before"]["balance"], e["after"]["balance"]) for e in entries] == [
        ("credit.deduct", "10.0000", "6.0000"),
        ("credit.add", "0.0000", "10.0000"),
    ]
    assert entries[0]["reason"] == "Usage"


async def test_money_needs_the_credits_scope_and_ownership(
    api: GraphQLClient, factory: Factory
) -> None:
    reader = await factory.token(
        await factory.staff(), scopes={Scope.CLIENTS_READ, Scope.CLIENTS_WRITE}
    )
    client = await factory.client(login="scoped")
    errors = await api.errors(
        ADD,
        {"input": {"clientId": gid("Client", client.id), "amount": "1", "paymentMethod": "CASH"}},
        token=reader,
    )
    assert errors[0]["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "MISSING_SCOPE",
        "scope": "credits:write",
    }
    manager = await factory.token(await factory.staff(role=StaffRole.MANAGER))
    errors = await api.errors(
        ADD,
        {"input": {"clientId": gid("Client", client.id), "amount": "1", "paymentMethod": "CASH"}},
        token=manager,
    )
    assert error_codes(errors) == ["FORBIDDEN"]


PRICE = """
mutation($id: ID!, $percent: Decimal!) {
  clientPriceAdjustmentSet(id: $id, percent: $percent) {
    client { priceAdjustmentPercent packagePrices { price { amount } } } userErrors { field code }
  }
}
"""
PACKAGE_CREATE = """
mutation($input: PackageCreateInput!) {
  packageCreate(input: $input) {
    package { id name prices { amount currency } } userErrors { field code }
  }
}
"""
PACKAGE_UPDATE = """
mutation($id: ID!, $input: PackageUpdateInput!) {
  packageUpdate(id: $id, input: $input) {
    package { name isActive prices { amount currency } } userErrors { field code }
  }
}
"""


@pytest.mark.usefixtures("admin")
async def test_price_adjustment_and_packages(api: GraphQLClient, factory: Factory) -> None:
    created = (
        await api(
            PACKAGE_CREATE,
            {
                "input": {
                    "name": "Gold",
                    "prices": [
                        {"currency": "eur", "amount": "10.00"},
                        {"currency": "JPY", "amount": "1500"},
                        {"currency": "KWD", "amount": "3.125"},
                    ],
                }
            },
        )
    )["packageCreate"]
    assert created["userErrors"] == []
    package_id = created["package"]["id"]
    assert created["package"]["prices"] == [
        {"amount": "10.00", "currency": "EUR"},
        {"amount": "1500", "currency": "JPY"},
        {"amount": "3.125", "currency": "KWD"},
    ]
    bad = (
        await api(
            PACKAGE_CREATE,
            {
                "input": {
                    "name": "Gold",
                    "prices": [
                        {"currency": "EUR", "amount": "1"},
                        {"currency": "EUR", "amount": "2"},
                        {"currency": "JPY", "amount": "0.5"},
                    ],
                }
            },
        )
    )["packageCreate"]
    assert codes(bad) == [
        (["input", "name"], "DUPLICATE"),
        (["input", "prices", "1", "currency"], "DUPLICATE"),
        (["input", "prices", "2", "amount"], "INVALID_AMOUNT_PRECISION"),
    ]
    client = await factory.client(login="yen", currency="JPY")
    for percent, price in (("-33.33", "1000"), ("12.5", "1688"), ("0", "1500")):
        payload = (await api(PRICE, {"id": gid("Client", client.id), "percent": percent}))[
            "clientPriceAdjustmentSet"
        ]
        assert payload["userErrors"] == []
        assert payload["client"]["packagePrices"] == [{"price": {"amount": price}}]
    for percent, code in (
        ("-100", "OUT_OF_RANGE"),
        ("1000.01", "OUT_OF_RANGE"),
        ("1.234", "INVALID_AMOUNT_PRECISION"),
    ):
        payload = (await api(PRICE, {"id": gid("Client", client.id), "percent": percent}))[
            "clientPriceAdjustmentSet"
        ]
        assert codes(payload) == [(["percent"], code)]
    updated = (
        await api(
            PACKAGE_UPDATE,
            {
                "id": package_id,
                "input": {
                    "name": "Platinum",
                    "isActive": False,
                    "prices": [{"currency": "USD", "amount": "12"}],
                },
            },
        )
    )["packageUpdate"]
    assert updated["package"] == {
        "name": "Platinum",
        "isActive": False,
        "prices": [{"amount": "12.00", "currency": "USD"}],
    }
    query = "query($f: AuditLogFilter) { auditLog(filter: $f) { nodes { action before after } } }"
    changes = (await api(query, {"f": {"targetId": gid("Client", client.id)}}))["auditLog"]["nodes"]
    assert [(c["before"], c["after"]) for c in changes][-1] == (
        {"price_adjustment_percent": "0.00"},
        {"price_adjustment_percent": "-33.33"},
    )


async def test_only_admins_change_the_price_list(api: GraphQLClient, factory: Factory) -> None:
    manager = await factory.token(await factory.staff(role=StaffRole.MANAGER))
    errors = await api.errors(PACKAGE_CREATE, {"input": {"name": "X", "prices": []}}, token=manager)
    assert error_codes(errors) == ["FORBIDDEN"]


VALID_TILL = "2026-07-01T00:00:00Z"
# (operation, first request, retry, outcome: "REPLAYED" or the retry's error code). A retry is
# compared by value: amounts by value, texts without surrounding spaces, instants as instants.
RETRIES = [
    ("add", {"amount": "12.50"}, {"amount": "12.5"}, "REPLAYED"),
    ("add", {"amount": "12.5"}, {"amount": "12.50"}, "REPLAYED"),
    ("add", {"amount": "2.00"}, {"amount": "2"}, "REPLAYED"),
    ("add", {"amount": "2"}, {"amount": "2.00"}, "REPLAYED"),
    ("add", {"amount": "2.00"}, {"amount": "2.000"}, "REPLAYED"),  # the same EUR value
    ("add", {"amount": "12.50"}, {"amount": "12.51"}, "IDEMPOTENCY_KEY_REUSED"),
    ("add", {"amount": "2"}, {"amount": "20"}, "IDEMPOTENCY_KEY_REUSED"),
    ("add", {"amount": "12.50"}, {"amount": "12.505"}, "INVALID_AMOUNT_PRECISION"),
    ("add", {"comment": "March"}, {"comment": "  March "}, "REPLAYED"),
    ("add", {"comment": "March"}, {"comment": "march"}, "IDEMPOTENCY_KEY_REUSED"),
    ("add", {"paymentReference": None}, {"paymentReference": "  "}, "REPLAYED"),
    ("add", {"paymentMethod": "CASH"}, {"paymentMethod": "CARD"}, "IDEMPOTENCY_KEY_REUSED"),
    ("add", {"validTill": VALID_TILL}, {"validTill": "2026-07-01T02:00:00+02:00"}, "REPLAYED"),
    ("add", {"validTill": VALID_TILL}, {"validTill": None}, "IDEMPOTENCY_KEY_REUSED"),
    ("deduct", {"amount": "3.5"}, {"amount": "3.50"}, "REPLAYED"),
    ("deduct", {"amount": "3.5"}, {"amount": "3.6"}, "IDEMPOTENCY_KEY_REUSED"),
    ("deduct", {"reason": "Usage"}, {"reason": "Usage "}, "REPLAYED"),
    ("note", {"unitAmount": "1.5"}, {"unitAmount": "1.50"}, "REPLAYED"),
    ("note", {"unitAmount": "1.5"}, {"unitAmount": "-1.5"}, "IDEMPOTENCY_KEY_REUSED"),
    ("note", {"quantity": 2}, {"quantity": 3}, "IDEMPOTENCY_KEY_REUSED"),
    ("note", {"description": "Fee"}, {"description": " Fee"}, "REPLAYED"),
    ("reverse", {"reason": "Bounced"}, {"reason": " Bounced  "}, "REPLAYED"),
    ("reverse", {"reason": "Bounced"}, {"reason": "Bounced twice"}, "IDEMPOTENCY_KEY_REUSED"),
    ("reverse", {"reason": "Bounced"}, {"key": "another"}, "ALREADY_REVERSED"),
    ("reverse", {"reason": "Bounced"}, {"key": None}, "ALREADY_REVERSED"),
]


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(("operation", "first", "retry", "outcome"), RETRIES)
async def test_a_retry_is_compared_by_value_not_spelling(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    operation: str,
    first: dict[str, Any],
    retry: dict[str, Any],
    outcome: str,
) -> None:
    # given a client with money, and one request made with a key
    client = await factory.client(login="again", currency="EUR")
    paid = await add(api, client.id, "100.00")

    async def send(values: dict[str, Any]) -> dict[str, Any]:
        if operation == "add":
            return await add(api, client.id, **{"amount": "1.00", **values, "idempotencyKey": "k"})
        if operation == "deduct":
            return await deduct(
                api, client.id, **{"amount": "1.00", **values, "idempotencyKey": "k"}
            )
        if operation == "note":
            line = {"description": "Fee", "quantity": 1, "unitAmount": "1.00", **values}
            input_ = {"clientId": gid("Client", client.id), "lines": [line], "idempotencyKey": "k"}
            return (await api(NOTE, {"input": input_}))["creditNoteCreate"]  # type: ignore[no-any-return]
        variables = {"id": paid["entry"]["id"], "reason": "Bounced", "key": "k", **values}
        return (await api(REVERSE, variables))["creditEntryReverse"]  # type: ignore[no-any-return]

    original = await send(first)
    assert original["userErrors"] == []
    # when it is retried with the same key
    again = await send(retry)
    # then it is replayed, or refused, and the ledger has one entry for the key either way
    if outcome == "REPLAYED":
        assert (again["replayed"], again["userErrors"]) == (True, [])
        assert again["entry"]["id"] == original["entry"]["id"]
    else:
        assert [error["code"] for error in again["userErrors"]] == [outcome]
    entries = await session.scalar(
        select(func.count()).select_from(CreditEntry).where(CreditEntry.client_id == client.id)
    )
    assert entries == 2
    await ledger_is_consistent(session, client.id)
