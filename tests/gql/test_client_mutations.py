"""Client lifecycle mutations: create, update, password, avatar, bulk status and delete."""

import base64
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import Base
from db.enums import ClientStatus, CustomFieldType, EntryKind, StaffRole
from db.models import (
    Category,
    Client,
    CreditEntry,
    CustomFieldDefinition,
    CustomFieldValue,
    DeletedClient,
    Department,
    MailMessage,
)
from services.auth import verify_password
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

STRONG = "correct horse battery staple"
PAYLOAD = """
  client {
    id login name email phone country currency language status creditLimit { amount }
    validTill moderation priceAdjustmentPercent manager { email } parent { login }
    departments { name } categories { name } customFields { definition { key } value }
  }
  userErrors { field code message }
"""
CREATE = f"""
mutation($input: ClientCreateInput!) {{ clientCreate(input: $input) {{ {PAYLOAD} }} }}
"""
UPDATE = f"""
mutation($id: ID!, $input: ClientUpdateInput!) {{
  clientUpdate(id: $id, input: $input) {{ {PAYLOAD} }}
}}
"""
PASSWORD = """
mutation($id: ID!, $password: String!) {
  clientPasswordChange(id: $id, password: $password) {
    client { login } userErrors { field code message }
  }
}
"""
AVATAR = """
mutation($id: ID!) { clientAvatarReset(id: $id) { client { avatarUrl } userErrors { field code } } }
"""
SET_STATUS = """
mutation($ids: [ID!]!, $status: ClientStatus!) {
  clientsSetStatus(ids: $ids, status: $status) {
    clients { login status canLogin } userErrors { field code message }
  }
}
"""
DELETE = """
mutation($ids: [ID!]!, $confirm: Boolean!) {
  clientsDelete(ids: $ids, confirm: $confirm) { deletedIds userErrors { field code message } }
}
"""
AUDIT = """
query($filter: AuditLogFilter) {
  auditLog(filter: $filter, first: 50) {
    nodes { action targetId targetLabel actorEmail actor { email } before after requestId }
  }
}
"""


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def codes(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


async def row_counts(session: AsyncSession) -> dict[str, int]:
    """Rows per table of domain data (the rate limiter's counters move with every request)."""
    counts = {}
    for table in Base.metadata.sorted_tables:
        if table.name == "rate_limit_buckets":
            continue
        counts[table.name] = await session.scalar(select(func.count()).select_from(table))
    return counts


@pytest.fixture
async def admin(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


async def create(api: GraphQLClient, **values: Any) -> dict[str, Any]:
    defaults = {"login": "acme", "password": STRONG, "currency": "EUR", "email": "ops@example.com"}
    return (await api(CREATE, {"input": {**defaults, **values}}))["clientCreate"]  # type: ignore[no-any-return]


# --- create ------------------------------------------------------------------------------


@pytest.mark.usefixtures("admin")
async def test_create_with_every_field(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    manager = await factory.staff(role=StaffRole.MANAGER, email="mia@clientdesk.test")
    parent = await factory.client(login="acme.group", currency="EUR")
    sales = Department(name="Sales")
    invoices = Category(name="Invoices")
    tier = CustomFieldDefinition(
        key="tier",
        label="Tier",
        type=CustomFieldType.SELECT,
        options=["gold", "silver"],
        created_at=clock(),
    )
    session.add_all([sales, invoices, tier])
    await session.commit()
    payload = await create(
        api,
        login="Acme.Berlin",
        name="Acme Berlin",
        email="Berlin@EXAMPLE.org",
        phone="030 1234567",
        country="de",
        language="de_AT",
        status="INACTIVE",
        managerId=gid("StaffUser", manager.id),
        parentId=gid("Client", parent.id),
        creditLimit="250.50",
        moderation=True,
        validTill="2027-01-01T00:00:00Z",
        departmentIds=[gid("Department", sales.id)],
        categoryIds=[gid("Category", invoices.id)],
        customFields=[{"key": "tier", "value": "gold"}],
        priceAdjustmentPercent="-12.5",
    )
    assert payload["userErrors"] == []
    client = payload["client"]
    assert client["login"] == "acme.berlin"
    assert client["email"] == "Berlin@example.org"
    assert client["phone"] == "+49301234567"
    assert (client["country"], client["currency"], client["language"]) == ("DE", "EUR", "de-AT")
    assert client["status"] == "INACTIVE"
    assert client["creditLimit"] == {"amount": "250.50"}
    assert client["validTill"] == "2027-01-01T00:00:00+00:00"
    assert client["moderation"] is True
    assert client["priceAdjustmentPercent"] == "-12.50"
    assert client["manager"] == {"email": "mia@clientdesk.test"}
    assert client["parent"] == {"login": "acme.group"}
    assert client["departments"] == [{"name": "Sales"}]
    assert client["categories"] == [{"name": "Invoices"}]
    assert client["customFields"] == [{"definition": {"key": "tier"}, "value": "gold"}]
    stored = await session.scalar(select(Client).where(Client.login == "acme.berlin"))
    assert stored is not None
    assert stored.password_hash != STRONG
    assert verify_password(stored.password_hash, STRONG)
    # audited, without the password
    entries = (await api(AUDIT, {"filter": {"targetId": client["id"]}}))["auditLog"]["nodes"]
    assert [e["action"] for e in entries] == ["client.create"]
    assert entries[0]["after"]["login"] == "acme.berlin"
    assert "password_hash" not in entries[0]["after"]
    assert entries[0]["after"]["custom_fields"] == {"tier": "gold"}


@pytest.mark.usefixtures("admin")
async def test_create_reports_every_error_together_and_writes_nothing(
    api: GraphQLClient, session: AsyncSession
) -> None:
    before = await row_counts(session)
    payload = await create(
        api,
        login="x",
        password="short",
        currency="XXX",
        email="not an address",
        phone="12",
        country="ZZ",
        language="klingon",
        creditLimit="-5",
        priceAdjustmentPercent="1000.01",
        managerId=gid("StaffUser", 10**9),
        departmentIds=[gid("Department", 10**9)],
        customFields=[{"key": "nope", "value": 1}],
    )
    assert payload["client"] is None
    assert sorted(codes(payload), key=str) == sorted(
        [
            (["input", "login"], "INVALID_LOGIN"),
            (["input", "password"], "PASSWORD_TOO_SHORT"),
            (["input", "currency"], "INVALID_CURRENCY"),
            (["input", "email"], "INVALID_EMAIL"),
            (["input", "phone"], "INVALID_PHONE"),
            (["input", "country"], "INVALID_COUNTRY"),
            (["input", "language"], "INVALID_LANGUAGE"),
            (["input", "priceAdjustmentPercent"], "OUT_OF_RANGE"),
            (["input", "managerId"], "NOT_FOUND"),
            (["input", "departmentIds", "0"], "NOT_FOUND"),
            (["input", "customFields", "0"], "CUSTOM_FIELD_UNKNOWN"),
        ],
        key=str,
    )
    assert await row_counts(session) == before


@pytest.mark.usefixtures("admin")
async def test_required_fields_and_a_contact(api: GraphQLClient) -> None:
    payload = await create(api, login="", password="", currency="", email=None)
    assert sorted(codes(payload), key=str) == sorted(
        [
            (["input", "login"], "REQUIRED"),
            (["input", "password"], "REQUIRED"),
            (["input", "currency"], "REQUIRED"),
            (["input", "email"], "CONTACT_REQUIRED"),
            (["input", "phone"], "CONTACT_REQUIRED"),
        ],
        key=str,
    )
    phone_only = await create(api, email=None, phone="+4930123456")
    assert phone_only["userErrors"] == []


@pytest.mark.usefixtures("admin")
async def test_login_is_unique_whatever_its_case(api: GraphQLClient) -> None:
    assert (await create(api, login="acme"))["userErrors"] == []
    payload = await create(api, login="ACME", email="other@example.com")
    assert codes(payload) == [(["input", "login"], "LOGIN_TAKEN")]


@pytest.mark.usefixtures("admin")
async def test_jpy_credit_limit_with_decimals_is_refused(api: GraphQLClient) -> None:
    payload = await create(api, currency="JPY", creditLimit="1000.5")
    assert codes(payload) == [(["input", "creditLimit"], "INVALID_AMOUNT_PRECISION")]
    assert payload["userErrors"][0]["message"] == "JPY amounts have no decimals"
    assert (await create(api, currency="KWD", creditLimit="10.125"))["client"]["creditLimit"] == {
        "amount": "10.125"
    }


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("amount", ["NaN", "1e3", "Infinity", "10000000000000"])
async def test_odd_decimals_are_user_errors(api: GraphQLClient, amount: str) -> None:
    payload = await create(api, creditLimit=amount)
    assert payload["client"] is None
    assert payload["userErrors"][0]["field"] == ["input", "creditLimit"]


@pytest.mark.usefixtures("admin")
async def test_parent_must_be_top_level_and_share_the_currency(
    api: GraphQLClient, factory: Factory
) -> None:
    top = await factory.client(login="top", currency="EUR")
    sub = await factory.client(login="sub", currency="EUR", parent_id=top.id)
    dollars = await factory.client(login="dollars", currency="USD")
    for parent, message in ((sub, "is itself a sub-account"), (dollars, "uses USD")):
        payload = await create(api, parentId=gid("Client", parent.id))
        assert codes(payload) == [(["input", "parentId"], "PARENT_INVALID")]
        assert message in payload["userErrors"][0]["message"]


@pytest.mark.usefixtures("admin")
async def test_custom_field_values_are_checked_by_type(
    api: GraphQLClient, session: AsyncSession, clock: FakeClock
) -> None:
    session.add_all(
        [
            CustomFieldDefinition(
                key="employees", label="Employees", type=CustomFieldType.NUMBER, created_at=clock()
            ),
            CustomFieldDefinition(
                key="signed", label="Signed", type=CustomFieldType.DATE, created_at=clock()
            ),
            CustomFieldDefinition(
                key="vip",
                label="VIP",
                type=CustomFieldType.BOOLEAN,
                required=True,
                created_at=clock(),
            ),
            CustomFieldDefinition(
                key="tier",
                label="Tier",
                type=CustomFieldType.SELECT,
                options=["gold"],
                created_at=clock(),
            ),
        ]
    )
    await session.commit()
    bad = await create(
        api,
        customFields=[
            {"key": "employees", "value": "many"},
            {"key": "signed", "value": "2026-02-30"},
            {"key": "tier", "value": "platinum"},
        ],
    )
    assert sorted(codes(bad), key=str) == sorted(
        [
            (["input", "customFields", "0"], "CUSTOM_FIELD_INVALID"),
            (["input", "customFields", "1"], "CUSTOM_FIELD_INVALID"),
            (["input", "customFields", "2"], "CUSTOM_FIELD_INVALID"),
            (["input", "customFields"], "CUSTOM_FIELD_REQUIRED"),
        ],
        key=str,
    )
    good = await create(
        api,
        customFields=[
            {"key": "employees", "value": 42},
            {"key": "signed", "value": "2026-02-28"},
            {"key": "vip", "value": False},
            {"key": "tier", "value": "gold"},
        ],
    )
    assert good["userErrors"] == []
    assert {f["definition"]["key"]: f["value"] for f in good["client"]["customFields"]} == {
        "employees": 42,
        "signed": "2026-02-28",
        "vip": False,
        "tier": "gold",
    }


@pytest.mark.usefixtures("admin")
async def test_unreadable_values_are_user_errors_on_their_paths_all_at_once(
    api: GraphQLClient,
) -> None:
    # given values no scalar, enum or global ID can read, as variables and as literals
    unreadable = {
        "login": "a",
        "password": "b",
        "currency": "EUR",
        "creditLimit": 12.5,
        "priceAdjustmentPercent": "1_0",
        "managerId": "not an id",
        "departmentIds": [gid("Department", 1), "@@"],
        "status": "ASLEEP",
        "validTill": "next tuesday",
    }
    # when
    payload = (await api(CREATE, {"input": unreadable}))["clientCreate"]
    literal = (
        await api(
            'mutation { clientCreate(input: {login: "a", password: "b", currency: "EUR", '
            "creditLimit: 12.5, status: ASLEEP}) { userErrors { field code } } }"
        )
    )["clientCreate"]
    # then each is reported on its own path, and nothing else ran
    assert payload["client"] is None
    assert codes(payload) == [
        (["input", "status"], "INVALID_CHOICE"),
        (["input", "managerId"], "INVALID_ID"),
        (["input", "creditLimit"], "INVALID_AMOUNT"),
        (["input", "validTill"], "INVALID_DATE"),
        (["input", "departmentIds", "1"], "INVALID_ID"),
        (["input", "priceAdjustmentPercent"], "INVALID_AMOUNT"),
    ]
    assert "Decimal values are strings" in payload["userErrors"][2]["message"]
    assert codes(literal) == [
        (["input", "status"], "INVALID_CHOICE"),
        (["input", "creditLimit"], "INVALID_AMOUNT"),
    ]


# --- update ------------------------------------------------------------------------------


@pytest.mark.usefixtures("admin")
async def test_update_changes_only_what_is_given_and_null_clears(
    api: GraphQLClient, factory: Factory
) -> None:
    client = await factory.client(
        login="bob", name="Bob", phone="+4930123456", country="DE", language="de"
    )
    payload = (
        await api(
            UPDATE,
            {
                "id": gid("Client", client.id),
                "input": {"name": None, "language": "fr", "phone": "030 7654321"},
            },
        )
    )["clientUpdate"]
    assert payload["userErrors"] == []
    updated = payload["client"]
    assert updated["name"] is None
    assert updated["language"] == "fr"
    assert updated["phone"] == "+49307654321"  # read in the client's country, DE
    assert (updated["login"], updated["email"], updated["country"]) == ("bob", client.email, "DE")
    entries = (
        await api(AUDIT, {"filter": {"targetId": updated["id"], "actions": ["client.update"]}})
    )["auditLog"]["nodes"]
    assert entries[0]["before"] == {"name": "Bob", "language": "de", "phone": "+4930123456"}
    assert entries[0]["after"] == {"name": None, "language": "fr", "phone": "+49307654321"}


@pytest.mark.usefixtures("admin")
async def test_null_is_refused_where_it_cannot_clear(api: GraphQLClient, factory: Factory) -> None:
    # given fields that may be left out but have no "nothing" to clear to
    client = await factory.client(login="kept", name="Kept")
    refused = {
        "login": None,
        "currency": None,
        "status": None,
        "creditLimit": None,
        "moderation": None,
        "customFields": None,
        "priceAdjustmentPercent": None,
        "name": None,  # this one clears
    }
    # when each is sent as null
    payload = (await api(UPDATE, {"id": gid("Client", client.id), "input": refused}))[
        "clientUpdate"
    ]
    # then each is a userError on its own path, in words (no Python internals), and nothing
    # changed
    assert codes(payload) == [
        (["input", name], "NULL_NOT_ALLOWED") for name in refused if name != "name"
    ]
    assert all(
        "Strawberry" not in e["message"] and " at 0x" not in e["message"]
        for e in payload["userErrors"]
    )
    literal = (
        await api(
            f'mutation {{ clientUpdate(id: "{gid("Client", client.id)}", input: '
            "{status: null}) { userErrors { field code } } }"
        )
    )["clientUpdate"]
    assert literal["userErrors"] == [{"field": ["input", "status"], "code": "NULL_NOT_ALLOWED"}]
    kept = (await api(UPDATE, {"id": gid("Client", client.id), "input": {}}))["clientUpdate"]
    assert kept["client"]["name"] == "Kept"


@pytest.mark.usefixtures("admin")
async def test_empty_text_in_an_update_clears_or_is_refused(
    api: GraphQLClient, factory: Factory
) -> None:
    client = await factory.client(login="empty", country="DE")
    cleared = (await api(UPDATE, {"id": gid("Client", client.id), "input": {"country": ""}}))[
        "clientUpdate"
    ]
    assert (cleared["userErrors"], cleared["client"]["country"]) == ([], None)
    refused = (
        await api(UPDATE, {"id": gid("Client", client.id), "input": {"login": "", "currency": " "}})
    )["clientUpdate"]
    assert codes(refused) == [
        (["input", "login"], "INVALID_LOGIN"),
        (["input", "currency"], "INVALID_CURRENCY"),
    ]


@pytest.mark.usefixtures("admin")
async def test_update_cannot_remove_the_last_contact(api: GraphQLClient, factory: Factory) -> None:
    client = await factory.client(login="bob", email="bob@example.com", phone=None)
    payload = (await api(UPDATE, {"id": gid("Client", client.id), "input": {"email": None}}))[
        "clientUpdate"
    ]
    assert codes(payload) == [
        (["input", "email"], "CONTACT_REQUIRED"),
        (["input", "phone"], "CONTACT_REQUIRED"),
    ]


@pytest.mark.usefixtures("admin")
async def test_currency_is_locked_once_money_moved(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    fresh = await factory.client(login="fresh", currency="EUR")
    paid = await factory.client(login="paid", currency="EUR", balance=Decimal(10))
    session.add(
        CreditEntry(
            client_id=paid.id,
            kind=EntryKind.PAYMENT,
            amount=Decimal(10),
            currency="EUR",
            balance_after=Decimal(10),
            created_at=clock(),
        )
    )
    await session.commit()
    ok = (await api(UPDATE, {"id": gid("Client", fresh.id), "input": {"currency": "usd"}}))[
        "clientUpdate"
    ]
    assert ok["client"]["currency"] == "USD"
    locked = (await api(UPDATE, {"id": gid("Client", paid.id), "input": {"currency": "USD"}}))[
        "clientUpdate"
    ]
    assert codes(locked) == [(["input", "currency"], "CURRENCY_LOCKED")]


@pytest.mark.usefixtures("admin")
async def test_credit_limit_cannot_go_below_the_debt(api: GraphQLClient, factory: Factory) -> None:
    client = await factory.client(
        login="debtor", currency="EUR", balance=Decimal(-80), credit_limit=Decimal(100)
    )
    payload = (await api(UPDATE, {"id": gid("Client", client.id), "input": {"creditLimit": "50"}}))[
        "clientUpdate"
    ]
    assert codes(payload) == [(["input", "creditLimit"], "CREDIT_LIMIT_BELOW_DEBT")]
    ok = (await api(UPDATE, {"id": gid("Client", client.id), "input": {"creditLimit": "80"}}))[
        "clientUpdate"
    ]
    assert ok["client"]["creditLimit"] == {"amount": "80.00"}


@pytest.mark.usefixtures("admin")
async def test_update_of_a_missing_client(api: GraphQLClient, factory: Factory) -> None:
    staff = await factory.staff()
    for id_ in (gid("Client", 10**9), gid("StaffUser", staff.id)):
        payload = (await api(UPDATE, {"id": id_, "input": {"name": "x"}}))["clientUpdate"]
        assert codes(payload) == [(["id"], "NOT_FOUND")]


@pytest.mark.usefixtures("admin")
async def test_access_lists_replace_and_clear(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    a, b = Department(name="A"), Department(name="B")
    session.add_all([a, b])
    await session.commit()
    client = await factory.client(login="bob")
    cid = gid("Client", client.id)
    set_both = (
        await api(
            UPDATE,
            {
                "id": cid,
                "input": {"departmentIds": [gid("Department", a.id), gid("Department", b.id)]},
            },
        )
    )["clientUpdate"]
    assert set_both["client"]["departments"] == [{"name": "A"}, {"name": "B"}]
    cleared = (await api(UPDATE, {"id": cid, "input": {"departmentIds": None}}))["clientUpdate"]
    assert cleared["client"]["departments"] == []


# --- password and avatar ---------------------------------------------------------------


@pytest.mark.usefixtures("admin")
async def test_password_change(api: GraphQLClient, factory: Factory, session: AsyncSession) -> None:
    client = await factory.client(login="bob")
    cid = gid("Client", client.id)
    weak = (await api(PASSWORD, {"id": cid, "password": "bob12345"}))["clientPasswordChange"]
    assert codes(weak) == [(["password"], "PASSWORD_TOO_WEAK")]
    ok = (await api(PASSWORD, {"id": cid, "password": STRONG}))["clientPasswordChange"]
    assert ok["userErrors"] == []
    await session.refresh(client)
    assert verify_password(client.password_hash, STRONG)
    entries = (await api(AUDIT, {"filter": {"targetId": cid}}))["auditLog"]["nodes"]
    assert entries[0]["action"] == "client.password_change"
    assert STRONG not in str(entries)


@pytest.mark.usefixtures("admin")
async def test_avatar_reset(api: GraphQLClient, factory: Factory) -> None:
    client = await factory.client(login="bob", avatar_url="https://img.test/bob.png")
    payload = (await api(AVATAR, {"id": gid("Client", client.id)}))["clientAvatarReset"]
    assert payload == {"client": {"avatarUrl": None}, "userErrors": []}


# --- bulk ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("admin")
async def test_bulk_status_is_all_or_nothing(api: GraphQLClient, factory: Factory) -> None:
    one, two = await factory.client(login="one"), await factory.client(login="two")
    ids = [gid("Client", one.id), gid("Client", two.id)]
    off = (await api(SET_STATUS, {"ids": ids, "status": "INACTIVE"}))["clientsSetStatus"]
    assert off["userErrors"] == []
    assert [(c["login"], c["status"], c["canLogin"]) for c in off["clients"]] == [
        ("one", "INACTIVE", False),
        ("two", "INACTIVE", False),
    ]
    mixed = (await api(SET_STATUS, {"ids": [*ids, gid("Client", 10**9)], "status": "ACTIVE"}))[
        "clientsSetStatus"
    ]
    assert codes(mixed) == [(["ids", "2"], "NOT_FOUND")]
    assert mixed["clients"] == []
    still = (await api(SET_STATUS, {"ids": ids[:1], "status": "INACTIVE"}))["clientsSetStatus"]
    assert still["clients"][0]["status"] == "INACTIVE"  # the refused call changed nothing


@pytest.mark.usefixtures("admin")
async def test_bulk_is_limited_to_500(api: GraphQLClient) -> None:
    ids = [gid("Client", n) for n in range(1, 502)]
    payload = (await api(SET_STATUS, {"ids": ids, "status": "ACTIVE"}))["clientsSetStatus"]
    assert codes(payload) == [(["ids"], "TOO_MANY")]


@pytest.mark.usefixtures("admin")
async def test_bulk_delete_mixing_deletable_and_not(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    # given a client with money, a parent with a sub-account, and two deletable clients
    rich = await factory.client(login="rich", balance=Decimal("10.50"), credit_limit=Decimal(0))
    parent = await factory.client(login="parent")
    await factory.client(login="child", parent_id=parent.id)
    plain = await factory.client(login="plain")
    family = await factory.client(login="family")
    kid = await factory.client(login="kid", parent_id=family.id)
    ids = [gid("Client", c.id) for c in (rich, parent, plain)]
    before = await row_counts(session)
    # when all three are deleted together
    refused = (await api(DELETE, {"ids": ids, "confirm": True}))["clientsDelete"]
    # then each refusal names its client, and nothing is deleted
    assert codes(refused) == [(["ids", "0"], "HAS_BALANCE"), (["ids", "1"], "HAS_SUB_ACCOUNTS")]
    assert "rich has a balance of 10.50 EUR" in refused["userErrors"][0]["message"]
    assert refused["deletedIds"] == []
    assert await row_counts(session) == before
    # and without confirmation nothing happens either
    unconfirmed = (await api(DELETE, {"ids": ids[2:], "confirm": False}))["clientsDelete"]
    assert codes(unconfirmed) == [(["confirm"], "CONFIRMATION_REQUIRED")]
    # a parent goes together with its sub-accounts; a plain client alone
    ok = (
        await api(
            DELETE,
            {"ids": [ids[2], gid("Client", family.id), gid("Client", kid.id)], "confirm": True},
        )
    )["clientsDelete"]
    assert ok["userErrors"] == []
    assert sorted(ok["deletedIds"]) == sorted(
        [ids[2], gid("Client", family.id), gid("Client", kid.id)]
    )
    remaining = set(await session.scalars(select(Client.login)))
    assert not {"plain", "family", "kid"} & remaining
    # each deletion is audited with a full snapshot
    entries = (await api(AUDIT, {"filter": {"actions": ["client.delete"]}}))["auditLog"]["nodes"]
    snapshots = {e["targetLabel"]: e["before"] for e in entries}
    assert set(snapshots) == {"plain", "family", "kid"}
    assert snapshots["kid"]["parent_id"] == family.id
    assert snapshots["plain"]["email"] == plain.email
    assert snapshots["plain"]["ledger"] == {"entries": 0, "sum": "0.0000"}
    assert all(e["after"] is None for e in entries)


MONEY = """
mutation($id: ID!) {
  paid: creditAdd(input: {clientId: $id, amount: "12.00", paymentMethod: CASH}) {
    entry { id } userErrors { code }
  }
  spent: creditDeduct(input: {clientId: $id, amount: "12.00", reason: "Usage"}) {
    entry { id } userErrors { code }
  }
}
"""
ENTRY_NODE = "query($id: ID!) { node(id: $id) { id } }"
REVERSE = """
mutation($id: ID!) { creditEntryReverse(entryId: $id, reason: "x") { userErrors { field code } } }
"""


@pytest.mark.usefixtures("admin")
async def test_deleting_a_client_keeps_its_ledger(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given the newest client, paid and spent down to zero
    client = await factory.client(login="history")
    money = await api(MONEY, {"id": gid("Client", client.id)})
    entry_ids = [money["paid"]["entry"]["id"], money["spent"]["entry"]["id"]]
    # when it is deleted
    deleted = await api(DELETE, {"ids": [gid("Client", client.id)], "confirm": True})
    assert deleted["clientsDelete"]["userErrors"] == []
    # then its ledger entries stay, and it is archived with its snapshot
    kept = list(
        await session.scalars(
            select(CreditEntry.kind)
            .where(CreditEntry.client_id == client.id)
            .order_by(CreditEntry.id)
        )
    )
    assert kept == [EntryKind.PAYMENT, EntryKind.DEDUCTION]
    archived = await session.get(DeletedClient, client.id, populate_existing=True)
    assert archived is not None
    assert archived.login == "history"
    assert archived.snapshot["ledger"] == {"entries": 2, "sum": "0.0000"}
    assert archived.snapshot["balance"] == "0.0000"
    # and they are history, not live data
    for entry_id in entry_ids:
        assert (await api(ENTRY_NODE, {"id": entry_id}))["node"] is None
    reversal = (await api(REVERSE, {"id": entry_ids[0]}))["creditEntryReverse"]
    assert codes(reversal) == [(["entryId"], "NOT_FOUND")]
    # and no new client is given the deleted one's id (SQLite would reuse the highest)
    created = await create(api, login="newcomer")
    assert created["userErrors"] == []
    assert created["client"]["id"] != gid("Client", client.id)
    newcomer = await session.scalar(select(Client.id).where(Client.login == "newcomer"))
    assert newcomer is not None
    assert newcomer > client.id


# --- managers ----------------------------------------------------------------------------


async def test_managers_change_only_their_clients(api: GraphQLClient, factory: Factory) -> None:
    mia = await factory.staff(role=StaffRole.MANAGER)
    other = await factory.staff(role=StaffRole.MANAGER)
    token = await factory.token(mia)
    own = await factory.client(login="own", manager_id=mia.id)
    sub = await factory.client(login="own.sub", parent_id=own.id)
    theirs = await factory.client(login="theirs", manager_id=other.id)
    for client in (own, sub):
        ok = (
            await api(
                UPDATE, {"id": gid("Client", client.id), "input": {"name": "Mine"}}, token=token
            )
        )["clientUpdate"]
        assert ok["userErrors"] == []
    errors = await api.errors(
        UPDATE, {"id": gid("Client", theirs.id), "input": {"name": "Mine"}}, token=token
    )
    assert error_codes(errors) == ["FORBIDDEN"]
    single = errors[0]["extensions"]
    assert single == {"code": "FORBIDDEN", "reason": "NOT_YOUR_CLIENT", "fields": [["id"]]}
    # a manager's new client is theirs; giving it to someone else is an admin's job
    created = (
        await api(
            CREATE,
            {
                "input": {
                    "login": "newbie",
                    "password": STRONG,
                    "currency": "EUR",
                    "email": "n@example.com",
                }
            },
            token=token,
        )
    )["clientCreate"]
    assert created["client"]["manager"] == {"email": mia.email}
    # (assigning clients to staff needs staff:admin, which no manager's token holds)
    handed = await api.errors(
        UPDATE,
        {"id": gid("Client", own.id), "input": {"managerId": gid("StaffUser", other.id)}},
        token=token,
    )
    assert handed[0]["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "MISSING_SCOPE",
        "scope": "staff:admin",
        "fields": [["input", "managerId"]],
    }
    # a bulk action says it in the same shape, naming each client it may not change
    errors = await api.errors(
        SET_STATUS,
        {"ids": [gid("Client", own.id), gid("Client", theirs.id)], "status": "INACTIVE"},
        token=token,
    )
    assert errors[0]["extensions"] == {**single, "fields": [["ids", "1"]]}


async def test_writing_needs_the_write_scope(api: GraphQLClient, factory: Factory) -> None:
    from db.enums import Scope

    reader = await factory.token(await factory.staff(), scopes={Scope.CLIENTS_READ})
    client = await factory.client(login="bob")
    errors = await api.errors(
        UPDATE, {"id": gid("Client", client.id), "input": {"name": "x"}}, token=reader
    )
    assert error_codes(errors) == ["FORBIDDEN"]
    errors = await api.errors(
        DELETE, {"ids": [gid("Client", client.id)], "confirm": True}, token=reader
    )
    assert errors[0]["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "MISSING_SCOPE",
        "scope": "clients:delete",
    }


@pytest.mark.usefixtures("admin")
async def test_login_details_go_to_the_outbox(api: GraphQLClient, session: AsyncSession) -> None:
    no_email = await create(api, email=None, phone="+4930123456", sendLoginDetails=True)
    assert codes(no_email) == [(["input", "sendLoginDetails"], "CONTACT_REQUIRED")]
    payload = await create(api, sendLoginDetails=True)
    assert payload["userErrors"] == []
    messages = (await session.scalars(select(MailMessage))).all()
    assert [(m.recipient, m.status.value) for m in messages] == [("ops@example.com", "PENDING")]
    assert "Login: acme" in messages[0].body
    assert STRONG not in messages[0].body


@pytest.mark.usefixtures("admin")
async def test_password_strength_query(api: GraphQLClient) -> None:
    query = """
    query($p: String!, $h: [String!]) {
      passwordStrength(password: $p, hints: $h) {
        score meetsPolicy warning suggestions crackTime
      }
    }
    """
    weak = (await api(query, {"p": "password"}))["passwordStrength"]
    assert (weak["score"], weak["meetsPolicy"]) == (0, False)
    assert weak["warning"] == "This is a top-10 common password."
    strong = (await api(query, {"p": STRONG}))["passwordStrength"]
    assert (strong["score"], strong["meetsPolicy"]) == (4, True)
    own_name = (await api(query, {"p": "acmeberlin1", "h": ["acmeberlin"]}))["passwordStrength"]
    assert own_name["meetsPolicy"] is False


CUSTOM_CREATE = """
mutation($input: CustomFieldDefinitionCreateInput!) {
  customFieldDefinitionCreate(input: $input) {
    customFieldDefinition { id key label type options required } userErrors { field code }
  }
}
"""
CUSTOM_UPDATE = """
mutation($id: ID!, $input: CustomFieldDefinitionUpdateInput!) {
  customFieldDefinitionUpdate(id: $id, input: $input) {
    customFieldDefinition { label options required } userErrors { field code message }
  }
}
"""
CUSTOM_DELETE = """
mutation($id: ID!) { customFieldDefinitionDelete(id: $id) { deletedId userErrors { field code } } }
"""


@pytest.mark.usefixtures("admin")
async def test_custom_field_definitions(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    created = (
        await api(
            CUSTOM_CREATE,
            {
                "input": {
                    "key": "tier",
                    "label": "Tier",
                    "type": "SELECT",
                    "options": ["gold", "silver"],
                }
            },
        )
    )["customFieldDefinitionCreate"]
    definition = created["customFieldDefinition"]
    assert (definition["key"], definition["options"], created["userErrors"]) == (
        "tier",
        ["gold", "silver"],
        [],
    )
    duplicate = (
        await api(CUSTOM_CREATE, {"input": {"key": "tier", "label": "T", "type": "TEXT"}})
    )["customFieldDefinitionCreate"]
    assert codes(duplicate) == [(["input", "key"], "DUPLICATE")]
    bad = (await api(CUSTOM_CREATE, {"input": {"key": "Bad Key", "label": "", "type": "SELECT"}}))[
        "customFieldDefinitionCreate"
    ]
    assert sorted(codes(bad), key=str) == sorted(
        [
            (["input", "key"], "INVALID"),
            (["input", "label"], "REQUIRED"),
            (["input", "options"], "REQUIRED"),
        ],
        key=str,
    )
    # an option in use stays
    client = await factory.client(login="goldie")
    tier_pk = int(base64.b64decode(definition["id"]).decode().split(":")[1])
    session.add(CustomFieldValue(client_id=client.id, definition_id=tier_pk, value="gold"))
    await session.commit()
    removing = (
        await api(CUSTOM_UPDATE, {"id": definition["id"], "input": {"options": ["silver"]}})
    )["customFieldDefinitionUpdate"]
    assert codes(removing) == [(["input", "options"], "CUSTOM_FIELD_IN_USE")]
    relabel = (
        await api(
            CUSTOM_UPDATE,
            {
                "id": definition["id"],
                "input": {"label": "Level", "options": ["gold", "bronze"], "required": True},
            },
        )
    )["customFieldDefinitionUpdate"]
    assert relabel["customFieldDefinition"] == {
        "label": "Level",
        "options": ["gold", "bronze"],
        "required": True,
    }
    deleted = (await api(CUSTOM_DELETE, {"id": definition["id"]}))["customFieldDefinitionDelete"]
    assert deleted == {"deletedId": definition["id"], "userErrors": []}
    assert await session.scalar(select(func.count()).select_from(CustomFieldValue)) == 0
    audit = (await api(AUDIT, {"filter": {"targetId": definition["id"]}}))["auditLog"]["nodes"]
    assert [e["action"] for e in audit] == [
        "custom_field.delete",
        "custom_field.update",
        "custom_field.create",
    ]
    assert audit[0]["before"]["values_removed"] == 1


async def test_custom_fields_are_for_admins(api: GraphQLClient, factory: Factory) -> None:
    manager = await factory.token(await factory.staff(role=StaffRole.MANAGER))
    errors = await api.errors(
        CUSTOM_CREATE, {"input": {"key": "x", "label": "X", "type": "TEXT"}}, token=manager
    )
    assert errors[0]["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "MISSING_SCOPE",
        "scope": "staff:admin",
    }


@pytest.mark.usefixtures("admin")
async def test_audit_log_records_who_when_and_the_request(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    client = await factory.client(login="bob", status=ClientStatus.ACTIVE)
    response = await api.http.post(
        "/graphql",
        json={
            "query": SET_STATUS,
            "variables": {"ids": [gid("Client", client.id)], "status": "INACTIVE"},
        },
        headers={"Authorization": f"Bearer {api.token}", "X-Request-ID": "req-42"},
    )
    assert response.json()["data"]["clientsSetStatus"]["userErrors"] == []
    entry = (await api(AUDIT, {"filter": {"targetId": gid("Client", client.id)}}))["auditLog"][
        "nodes"
    ][0]
    assert entry["action"] == "client.status_change"
    assert (entry["before"], entry["after"]) == ({"status": "ACTIVE"}, {"status": "INACTIVE"})
    assert entry["requestId"] == "req-42"
    assert entry["actor"]["email"] == entry["actorEmail"]
    later = (
        await api(
            AUDIT, {"filter": {"occurredAfter": (clock() + timedelta(seconds=1)).isoformat()}}
        )
    )["auditLog"]["nodes"]
    assert later == []


def custom_values(payload: dict[str, Any]) -> dict[str, Any]:
    """The client's custom values (the list shows every field, null where it has none)."""
    fields = payload["client"]["customFields"]
    return {f["definition"]["key"]: f["value"] for f in fields if f["value"] is not None}


@pytest.fixture
async def required_fields(session: AsyncSession, clock: FakeClock) -> None:
    """A required text field, a required option and an optional text field."""
    session.add_all(
        [
            CustomFieldDefinition(
                key="contract",
                label="Contract",
                type=CustomFieldType.TEXT,
                required=True,
                created_at=clock(),
            ),
            CustomFieldDefinition(
                key="tier",
                label="Tier",
                type=CustomFieldType.SELECT,
                options=["gold"],
                required=True,
                created_at=clock(),
            ),
            CustomFieldDefinition(
                key="note", label="Note", type=CustomFieldType.TEXT, created_at=clock()
            ),
        ]
    )
    await session.commit()


REQUIRED_ON_CREATE = [
    # (custom fields given, errors)
    (None, [(["input", "customFields"], "CUSTOM_FIELD_REQUIRED")] * 2),
    ([], [(["input", "customFields"], "CUSTOM_FIELD_REQUIRED")] * 2),
    (
        [{"key": "note", "value": "hi"}, {"key": "tier", "value": "gold"}],
        [(["input", "customFields"], "CUSTOM_FIELD_REQUIRED")],
    ),
    (
        [{"key": "contract", "value": None}, {"key": "tier", "value": "gold"}],
        [(["input", "customFields", "0"], "CUSTOM_FIELD_REQUIRED")],
    ),
    (
        [{"key": "contract", "value": ""}, {"key": "tier", "value": "gold"}],
        [(["input", "customFields", "0"], "CUSTOM_FIELD_REQUIRED")],
    ),
    (
        [{"key": "tier", "value": "gold"}, {"key": "contract", "value": " \t "}],
        [(["input", "customFields", "1"], "CUSTOM_FIELD_REQUIRED")],
    ),
    (
        [{"key": "contract", "value": "C-1"}, {"key": "tier", "value": ""}],
        [(["input", "customFields", "1"], "CUSTOM_FIELD_REQUIRED")],
    ),
    (
        [{"key": "contract", "value": "C-1"}, {"key": "tier", "value": "platinum"}],
        [(["input", "customFields", "1"], "CUSTOM_FIELD_INVALID")],
    ),
    ([{"key": "contract", "value": "C-1"}, {"key": "tier", "value": "gold"}], []),
]


@pytest.mark.usefixtures("admin", "required_fields")
@pytest.mark.parametrize(("given", "errors"), REQUIRED_ON_CREATE)
async def test_a_new_client_needs_a_value_for_every_required_field(
    api: GraphQLClient,
    session: AsyncSession,
    given: list[dict[str, Any]] | None,
    errors: list[tuple[list[str], str]],
) -> None:
    # when a client is created with these values
    values = {} if given is None else {"customFields": given}
    payload = await create(api, **values)
    # then it is refused on the paths of the missing values, creating nothing
    assert sorted(codes(payload), key=str) == sorted(errors, key=str)
    created = await session.scalar(select(func.count()).select_from(Client))
    assert created == (0 if errors else 1)
    if not errors:
        assert custom_values(payload) == {"contract": "C-1", "tier": "gold"}


@pytest.mark.usefixtures("admin", "required_fields")
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"key": "contract", "value": None}, "CUSTOM_FIELD_REQUIRED"),
        ({"key": "contract", "value": ""}, "CUSTOM_FIELD_REQUIRED"),
        ({"key": "contract", "value": "   "}, "CUSTOM_FIELD_REQUIRED"),
        ({"key": "tier", "value": None}, "CUSTOM_FIELD_REQUIRED"),
        ({"key": "contract", "value": "C-2"}, None),
    ],
)
async def test_a_change_cannot_remove_or_blank_a_required_value(
    api: GraphQLClient, change: dict[str, Any], code: str | None
) -> None:
    # given a client with its required values
    client = await create(
        api,
        customFields=[{"key": "contract", "value": "C-1"}, {"key": "tier", "value": "gold"}],
    )
    # when a change removes or blanks one (beside another change)
    changed = (
        await api(
            UPDATE,
            {
                "id": client["client"]["id"],
                "input": {
                    "name": "Renamed",
                    "customFields": [{"key": "note", "value": "x"}, change],
                },
            },
        )
    )["clientUpdate"]
    if code is None:
        assert changed["userErrors"] == []
        assert custom_values(changed) == {"contract": "C-2", "tier": "gold", "note": "x"}
        return
    # then it is refused on the value's path, and nothing changes
    assert codes(changed) == [(["input", "customFields", "1"], code)]
    query = "query($id: ID!) { node(id: $id) { ... on Client { name customFields { value } } } }"
    unchanged = (await api(query, {"id": client["client"]["id"]}))["node"]
    assert unchanged["name"] is None
    assert [f["value"] for f in unchanged["customFields"]] == ["C-1", "gold", None]


@pytest.mark.usefixtures("admin")
async def test_a_field_made_required_later_binds_new_clients_and_changes_of_it_only(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given a client without a value, and then a field created required
    older = await factory.client(login="older")
    created = (
        await api(
            CUSTOM_CREATE,
            {"input": {"key": "region", "label": "Region", "type": "TEXT", "required": True}},
        )
    )["customFieldDefinitionCreate"]
    assert created["userErrors"] == []
    # and a field made required later
    optional = (
        await api(CUSTOM_CREATE, {"input": {"key": "vat", "label": "VAT", "type": "TEXT"}})
    )["customFieldDefinitionCreate"]["customFieldDefinition"]
    made = (await api(CUSTOM_UPDATE, {"id": optional["id"], "input": {"required": True}}))[
        "customFieldDefinitionUpdate"
    ]
    assert made["userErrors"] == []
    older_id = gid("Client", older.id)

    async def update(input: dict[str, Any]) -> dict[str, Any]:
        return (await api(UPDATE, {"id": older_id, "input": input}))["clientUpdate"]  # type: ignore[no-any-return]

    # then the client that lacks both still takes changes of other fields
    assert (await update({"name": "Older Ltd"}))["userErrors"] == []
    # and of one required field without the other
    assert custom_values(await update({"customFields": [{"key": "vat", "value": "DE1"}]})) == {
        "vat": "DE1"
    }
    # but not the removal of a value it now has, nor an empty one for the other
    removal = await update({"customFields": [{"key": "region", "value": ""}]})
    assert codes(removal) == [(["input", "customFields", "0"], "CUSTOM_FIELD_REQUIRED")]
    removal = await update({"customFields": [{"key": "vat", "value": None}]})
    assert codes(removal) == [(["input", "customFields", "0"], "CUSTOM_FIELD_REQUIRED")]
    # and a new client needs both
    new = await create(api)
    assert codes(new) == [(["input", "customFields"], "CUSTOM_FIELD_REQUIRED")] * 2
    assert await session.scalar(select(func.count()).select_from(Client)) == 1
