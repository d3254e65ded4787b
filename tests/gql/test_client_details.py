"""A client's nested data: sub-accounts, ledger, connections, custom fields, access, prices,
language; and the reference data behind the filter drop-downs."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import (
    ConnectionStatus,
    ConnectionType,
    CustomFieldType,
    EntryKind,
    PaymentMethod,
    StaffRole,
)
from db.models import (
    Category,
    ClientConnection,
    CreditEntry,
    CreditNoteLine,
    CustomFieldDefinition,
    CustomFieldValue,
    Department,
    Package,
    PackagePrice,
    client_categories,
    client_departments,
)
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

CLIENT = """
query($login: String!, $first: Int, $after: String, $last: Int, $before: String) {
  client(login: $login) {
    effectiveLanguage
    subAccounts(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
      nodes { login parent { login } }
    }
    creditEntries(first: 10) {
      totalCount
      nodes {
        id kind amount { amount currency } balanceAfter { amount } paymentMethod comment
        createdBy { email } client { login } reverses { kind } reversedBy { kind }
        lines { description quantity unitAmount { amount } amount { amount } package { name } }
      }
    }
    connections { type status lastSeenAt }
    customFields { definition { key type options } value }
    departments { name } allDepartments
    categories { name } allCategories
    packagePrices {
      package { name } basePrice { amount currency } price { amount } adjustmentPercent
    }
  }
}
"""


@pytest.fixture
async def token(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


async def client_data(api: GraphQLClient, login: str, **page: Any) -> dict[str, Any]:
    return (await api(CLIENT, {"login": login, **page}))["client"]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("token")
async def test_sub_accounts_page_newest_first(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    parent = await factory.client(login="parent")
    for n in range(5):
        await factory.client(
            login=f"sub{n}", parent_id=parent.id, created_at=clock() + timedelta(minutes=n)
        )
    await factory.client(login="unrelated")
    first = (await client_data(api, "parent", first=2))["subAccounts"]
    assert first["totalCount"] == 5
    assert [n["login"] for n in first["nodes"]] == ["sub4", "sub3"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["nodes"][0]["parent"] == {"login": "parent"}
    rest = await client_data(api, "parent", first=10, after=first["pageInfo"]["endCursor"])
    assert [n["login"] for n in rest["subAccounts"]["nodes"]] == ["sub2", "sub1", "sub0"]
    assert rest["subAccounts"]["pageInfo"]["hasPreviousPage"] is True
    assert rest["subAccounts"]["pageInfo"]["hasNextPage"] is False
    back = (await client_data(api, "parent", last=2))["subAccounts"]
    assert [n["login"] for n in back["nodes"]] == ["sub1", "sub0"]
    assert back["pageInfo"]["hasPreviousPage"] is True
    empty = (await client_data(api, "unrelated"))["subAccounts"]
    assert empty == {
        "totalCount": 0,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "endCursor": None,
            "startCursor": None,
        },
        "nodes": [],
    }


@pytest.mark.usefixtures("token")
async def test_sub_accounts_refuse_bad_page_arguments(api: GraphQLClient, factory: Factory) -> None:
    await factory.client(login="parent")
    errors = await api.errors(CLIENT, {"login": "parent", "first": 500})
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["path"] == ["client", "subAccounts"]


@pytest.mark.usefixtures("token")
async def test_ledger_with_credit_note_lines_and_a_reversal(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    # given a JPY client with a payment, its reversal and a credit note with a negative line
    staff = await factory.staff(email="cashier@clientdesk.test")
    client = await factory.client(
        login="yen", currency="JPY", balance=Decimal(-700), credit_limit=1000
    )
    package = Package(name="SMS 1k", created_at=clock(), updated_at=clock())
    session.add(package)
    await session.flush()
    payment = CreditEntry(
        client_id=client.id,
        kind=EntryKind.PAYMENT,
        amount=Decimal(5000),
        currency="JPY",
        balance_after=Decimal(5000),
        payment_method=PaymentMethod.CARD,
        created_by_id=staff.id,
        created_at=clock(),
    )
    session.add(payment)
    await session.flush()
    reversal = CreditEntry(
        client_id=client.id,
        kind=EntryKind.REVERSAL,
        amount=Decimal(-5000),
        currency="JPY",
        balance_after=Decimal(0),
        reverses_id=payment.id,
        comment="Wrong client",
        created_at=clock(),
    )
    note = CreditEntry(
        client_id=client.id,
        kind=EntryKind.CREDIT_NOTE,
        amount=Decimal(-700),
        currency="JPY",
        balance_after=Decimal(-700),
        created_at=clock(),
    )
    session.add_all([reversal, note])
    await session.flush()
    session.add_all(
        [
            CreditNoteLine(
                entry_id=note.id,
                position=0,
                description="Bonus",
                quantity=1,
                unit_amount=Decimal(300),
                amount=Decimal(300),
            ),
            CreditNoteLine(
                entry_id=note.id,
                position=1,
                description="Taken back",
                quantity=2,
                unit_amount=Decimal(-500),
                amount=Decimal(-1000),
                package_id=package.id,
            ),
        ]
    )
    await session.commit()
    # when the ledger is read
    ledger = (await client_data(api, "yen"))["creditEntries"]
    # then entries come newest first, with lines, links and JPY's zero decimals
    assert ledger["totalCount"] == 3
    kinds = [e["kind"] for e in ledger["nodes"]]
    assert kinds == ["CREDIT_NOTE", "REVERSAL", "PAYMENT"]
    credit_note, reversed_, paid = ledger["nodes"]
    assert credit_note["amount"] == {"amount": "-700", "currency": "JPY"}
    assert credit_note["lines"] == [
        {
            "description": "Bonus",
            "quantity": 1,
            "unitAmount": {"amount": "300"},
            "amount": {"amount": "300"},
            "package": None,
        },
        {
            "description": "Taken back",
            "quantity": 2,
            "unitAmount": {"amount": "-500"},
            "amount": {"amount": "-1000"},
            "package": {"name": "SMS 1k"},
        },
    ]
    assert reversed_["reverses"] == {"kind": "PAYMENT"}
    assert reversed_["comment"] == "Wrong client"
    assert paid["reversedBy"] == {"kind": "REVERSAL"}
    assert paid["createdBy"] == {"email": "cashier@clientdesk.test"}
    assert paid["client"] == {"login": "yen"}
    assert paid["lines"] == []
    # and an entry is a node
    node = await api(
        "query($id: ID!) { node(id: $id) { ... on CreditEntry { kind } } }", {"id": paid["id"]}
    )
    assert node == {"node": {"kind": "PAYMENT"}}


@pytest.mark.usefixtures("token")
async def test_connections_custom_fields_and_access(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    client = await factory.client(login="busy")
    await factory.client(login="open")
    tier = CustomFieldDefinition(
        key="tier",
        label="Tier",
        type=CustomFieldType.SELECT,
        options=["gold", "silver"],
        position=1,
        created_at=clock(),
    )
    vat = CustomFieldDefinition(
        key="vat", label="VAT", type=CustomFieldType.TEXT, position=0, created_at=clock()
    )
    sales, billing = Department(name="Sales"), Department(name="Billing")
    api_category = Category(name="API")
    session.add_all([tier, vat, sales, billing, api_category])
    await session.flush()
    session.add_all(
        [
            ClientConnection(
                client_id=client.id,
                type=ConnectionType.SMPP,
                status=ConnectionStatus.ONLINE,
                last_seen_at=clock(),
            ),
            ClientConnection(
                client_id=client.id, type=ConnectionType.HTTP, status=ConnectionStatus.OFFLINE
            ),
            CustomFieldValue(client_id=client.id, definition_id=tier.id, value="gold"),
        ]
    )
    await session.execute(
        insert(client_departments),
        [
            {"client_id": client.id, "department_id": sales.id},
            {"client_id": client.id, "department_id": billing.id},
        ],
    )
    await session.execute(
        insert(client_categories).values(client_id=client.id, category_id=api_category.id)
    )
    await session.commit()

    busy = await client_data(api, "busy")
    assert busy["connections"] == [
        {"type": "HTTP", "status": "OFFLINE", "lastSeenAt": None},
        {"type": "SMPP", "status": "ONLINE", "lastSeenAt": clock().isoformat()},
    ]
    assert busy["customFields"] == [
        {"definition": {"key": "vat", "type": "TEXT", "options": None}, "value": None},
        {
            "definition": {"key": "tier", "type": "SELECT", "options": ["gold", "silver"]},
            "value": "gold",
        },
    ]
    assert busy["departments"] == [{"name": "Billing"}, {"name": "Sales"}]
    assert busy["allDepartments"] is False
    assert (busy["categories"], busy["allCategories"]) == ([{"name": "API"}], False)
    # nothing selected means everything
    open_ = await client_data(api, "open")
    assert (open_["departments"], open_["allDepartments"]) == ([], True)
    assert (open_["categories"], open_["allCategories"]) == ([], True)
    assert open_["connections"] == []


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize(
    ("currency", "base", "percent", "price"),
    [
        ("EUR", "10.00", "12.5", "11.25"),
        ("EUR", "9.99", "-33.33", "6.66"),  # 6.6603 rounds down
        ("EUR", "0.10", "5", "0.11"),  # 0.105 rounds half up
        ("JPY", "150", "2.5", "154"),  # 153.75 rounds half up to a whole yen
        ("JPY", "199", "-0.25", "199"),  # 198.5025 rounds up to a whole yen
        ("EUR", "0.21", "-50", "0.11"),  # 0.105 rounds half up (banker's rounding gives 0.10)
        ("KWD", "1.235", "10", "1.359"),  # 1.3585 rounds half up to 3 decimals
        ("KWD", "2.000", "-99.99", "0.000"),  # 0.0002 rounds to zero fils
    ],
)
async def test_package_prices_apply_the_adjustment_and_round_half_up(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    clock: FakeClock,
    currency: str,
    base: str,
    percent: str,
    price: str,
) -> None:
    await factory.client(
        login="priced", currency=currency, price_adjustment_percent=Decimal(percent)
    )
    package = Package(name="Starter", created_at=clock(), updated_at=clock())
    other = Package(name="Only in USD", created_at=clock(), updated_at=clock())
    retired = Package(name="Retired", is_active=False, created_at=clock(), updated_at=clock())
    session.add_all([package, other, retired])
    await session.flush()
    session.add_all(
        [
            PackagePrice(package_id=package.id, currency=currency, amount=Decimal(base)),
            PackagePrice(package_id=other.id, currency="USD", amount=Decimal(1)),
            PackagePrice(package_id=retired.id, currency=currency, amount=Decimal(1)),
        ]
    )
    await session.commit()
    prices = (await client_data(api, "priced"))["packagePrices"]
    assert prices == [
        {
            "package": {"name": "Starter"},
            "basePrice": {"amount": base, "currency": currency},
            "price": {"amount": price},
            "adjustmentPercent": f"{Decimal(percent):.2f}",
        }
    ]


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize(
    ("language", "effective"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("pt-BR", "pt-BR"),
        ("pt-PT", "pt"),
        ("sw", "en"),
        (None, "en"),
    ],
)
async def test_effective_language_falls_back(
    api: GraphQLClient, factory: Factory, language: str | None, effective: str
) -> None:
    await factory.client(login="speaker", language=language)
    assert (await client_data(api, "speaker"))["effectiveLanguage"] == effective


REFERENCE = """
{
  staffUsers(role: MANAGER) { name role }
  departments { name }
  categories { name }
  customFieldDefinitions { key }
  packages { name prices { amount currency } }
  countries { code name }
  currencies { code name minorUnits }
  languages { tag name nativeName hasTranslation }
}
"""


async def test_reference_data_for_drop_downs(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    token = await factory.token(await factory.staff(role=StaffRole.MANAGER, name="Zed"))
    await factory.staff(role=StaffRole.MANAGER, name="Amy")
    await factory.staff(role=StaffRole.ADMIN, name="Root")
    session.add_all([Department(name="Support"), Category(name="Invoices")])
    package = Package(name="Gold", created_at=clock(), updated_at=clock())
    session.add(package)
    await session.flush()
    session.add_all(
        [
            PackagePrice(package_id=package.id, currency=c, amount=Decimal(a))
            for c, a in (("USD", "5"), ("EUR", "4.6"))
        ]
    )
    await session.commit()
    data = await api(REFERENCE, token=token)
    assert [u["name"] for u in data["staffUsers"]] == ["Amy", "Zed"]
    assert {"name": "Support"} in data["departments"]
    assert {"name": "Invoices"} in data["categories"]
    assert data["packages"] == [
        {
            "name": "Gold",
            "prices": [
                {"amount": "4.60", "currency": "EUR"},
                {"amount": "5.00", "currency": "USD"},
            ],
        }
    ]
    countries = {c["code"]: c["name"] for c in data["countries"]}
    assert countries["DE"] == "Germany"
    assert len(countries) == 249
    currencies = {c["code"]: c["minorUnits"] for c in data["currencies"]}
    assert (currencies["JPY"], currencies["EUR"], currencies["KWD"]) == (0, 2, 3)
    languages = {lang["tag"]: lang for lang in data["languages"]}
    assert languages["de"]["hasTranslation"] is True
    assert languages["pt-BR"]["nativeName"] == "português (Brasil)"
    assert languages["sw"]["hasTranslation"] is False
    assert len(languages) > 200
