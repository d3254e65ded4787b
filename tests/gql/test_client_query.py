"""`client(id | login)`, `node` and `nodes`: the first path from request to database and back."""

import base64
from datetime import timedelta
from decimal import Decimal

import pytest

from db.enums import ClientStatus, StaffRole
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

CLIENT_FIELDS = """
  id login name email phone country currency language status blocked canLogin
  block { reason blockedAt blockedUntil blockedBy { email } }
  balance { amount currency } creditLimit { amount currency }
  validTill moderation avatarUrl priceAdjustmentPercent lastActivityAt
  chatsCount supportRequestsCount createdAt updatedAt
  manager { id name email role } parent { login }
"""
BY_LOGIN = f"query($login: String!) {{ client(login: $login) {{ {CLIENT_FIELDS} }} }}"
BY_ID = f"query($id: ID!) {{ client(id: $id) {{ {CLIENT_FIELDS} }} }}"
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Client { login } } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on StaffUser { email } } }"


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


@pytest.fixture
async def token(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


@pytest.mark.usefixtures("token")
async def test_client_by_login_returns_every_scalar_field(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given a client with a manager, a parent and a ledger balance in Kuwaiti dinars
    manager = await factory.staff(role=StaffRole.MANAGER, name="Mia Manager")
    parent = await factory.client(login="acme", currency="KWD")
    await factory.client(
        login="acme.sub",
        name="Acme Sub",
        email="sub@acme.test",
        phone="+96550001234",
        country="KW",
        currency="KWD",
        language="ar",
        manager_id=manager.id,
        parent_id=parent.id,
        balance=Decimal("12.5"),
        credit_limit=Decimal(100),
        price_adjustment_percent=Decimal("-7.25"),
        valid_till=clock() + timedelta(days=30),
        last_activity_at=clock() - timedelta(days=2),
        chats_count=3,
        support_requests_count=1,
        moderation=True,
    )
    # when it is looked up by login, in upper case
    client = (await api(BY_LOGIN, {"login": "ACME.SUB"}))["client"]
    # then every field comes back, money with the currency's three decimals
    assert client["login"] == "acme.sub"
    assert client["name"] == "Acme Sub"
    assert client["phone"] == "+96550001234"
    assert (client["country"], client["currency"], client["language"]) == ("KW", "KWD", "ar")
    assert client["status"] == "ACTIVE"
    assert client["blocked"] is False
    assert client["block"] is None
    assert client["canLogin"] is True
    assert client["balance"] == {"amount": "12.500", "currency": "KWD"}
    assert client["creditLimit"] == {"amount": "100.000", "currency": "KWD"}
    assert client["priceAdjustmentPercent"] == "-7.25"
    assert client["validTill"] == (clock() + timedelta(days=30)).isoformat()
    assert client["lastActivityAt"] == (clock() - timedelta(days=2)).isoformat()
    assert (client["chatsCount"], client["supportRequestsCount"]) == (3, 1)
    assert client["moderation"] is True
    assert client["manager"]["name"] == "Mia Manager"
    assert client["manager"]["role"] == "MANAGER"
    assert client["parent"] == {"login": "acme"}


@pytest.mark.usefixtures("token")
async def test_money_uses_each_currencys_minor_units(api: GraphQLClient, factory: Factory) -> None:
    await factory.client(login="yen", currency="JPY", balance=Decimal(1500))
    await factory.client(login="euro", currency="EUR", balance=Decimal("-3.5"), credit_limit=10)
    assert (await api(BY_LOGIN, {"login": "yen"}))["client"]["balance"]["amount"] == "1500"
    assert (await api(BY_LOGIN, {"login": "euro"}))["client"]["balance"]["amount"] == "-3.50"


@pytest.mark.usefixtures("token")
async def test_client_by_id_and_node_agree(api: GraphQLClient, factory: Factory) -> None:
    row = await factory.client(login="bob")
    by_login = (await api(BY_LOGIN, {"login": "bob"}))["client"]
    assert by_login["id"] == global_id("Client", row.id)
    by_id = (await api(BY_ID, {"id": by_login["id"]}))["client"]
    assert by_id == by_login
    node = (await api(NODE, {"id": by_login["id"]}))["node"]
    assert node == {"__typename": "Client", "id": by_login["id"], "login": "bob"}


@pytest.mark.usefixtures("token")
async def test_missing_and_wrong_type_ids_are_not_found(
    api: GraphQLClient, factory: Factory
) -> None:
    staff = await factory.staff()
    assert (await api(BY_LOGIN, {"login": "nobody"}))["client"] is None
    assert (await api(BY_ID, {"id": global_id("Client", 999_999_999)}))["client"] is None
    # a staff user's ID where a client's is expected is "not found", not a staff user
    assert (await api(BY_ID, {"id": global_id("StaffUser", staff.id)}))["client"] is None
    assert (await api(NODE, {"id": global_id("Nonsense", 1)}))["node"] is None


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize(
    "bad_id", ["not base64!", global_id("Client", 0)[:-2] + "x", "Q2xpZW50OmFiYw=="]
)
async def test_malformed_id_is_a_clear_error(api: GraphQLClient, bad_id: str) -> None:
    errors = await api.errors(BY_ID, {"id": bad_id})
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert "is not a valid ID" in errors[0]["message"]


@pytest.mark.usefixtures("token")
async def test_client_needs_exactly_one_of_id_and_login(api: GraphQLClient) -> None:
    for query in ("{ client { id } }", '{ client(id: "Q2xpZW50OjE=", login: "y") { id } }'):
        errors = await api.errors(query)
        assert error_codes(errors) == ["BAD_USER_INPUT"]
        assert errors[0]["message"] == "Give exactly one of `id` and `login`."


@pytest.mark.usefixtures("token")
async def test_nodes_keeps_order_and_marks_missing(api: GraphQLClient, factory: Factory) -> None:
    first, second = await factory.staff(), await factory.staff()
    ids = [
        global_id("StaffUser", second.id),
        global_id("StaffUser", 10**12),
        global_id("StaffUser", first.id),
    ]
    nodes = (await api(NODES, {"ids": ids}))["nodes"]
    assert nodes == [
        {"id": ids[0], "email": second.email},
        None,
        {"id": ids[2], "email": first.email},
    ]


@pytest.mark.usefixtures("token")
async def test_block_counts_only_until_it_expires(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given a client blocked for one more hour
    admin = await factory.staff(email="blocker@clientdesk.test")
    await factory.client(
        login="spammer",
        block_reason="Spam complaints",
        blocked_at=clock() - timedelta(days=1),
        blocked_until=clock() + timedelta(hours=1),
        blocked_by_id=admin.id,
    )
    client = (await api(BY_LOGIN, {"login": "spammer"}))["client"]
    assert client["blocked"] is True
    assert client["canLogin"] is False
    assert client["block"]["reason"] == "Spam complaints"
    assert client["block"]["blockedBy"] == {"email": "blocker@clientdesk.test"}
    # when the hour passes (no job runs)
    clock.advance(timedelta(hours=1))
    # then the client is no longer blocked
    client = (await api(BY_LOGIN, {"login": "spammer"}))["client"]
    assert client["blocked"] is False
    assert client["block"] is None
    assert client["canLogin"] is True


@pytest.mark.usefixtures("token")
async def test_can_login_needs_active_status_and_paid_access(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    await factory.client(login="disabled", status=ClientStatus.INACTIVE)
    await factory.client(login="expired", valid_till=clock() - timedelta(seconds=1))
    for login in ("disabled", "expired"):
        assert (await api(BY_LOGIN, {"login": login}))["client"]["canLogin"] is False
