"""Billing Mode: read by every staff user, changed by admins (audited); when off, validTill
does not restrict canLogin (on every path: one client, the list, its sort) and no money
mutation moves money."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from db.enums import StaffRole
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory
from tests.gql.test_clients_list import gid

SETTINGS = "{ systemSettings { billingMode updatedAt } }"
SET = """
mutation($on: Boolean) {
  systemSettingsUpdate(input: {billingMode: $on}) {
    systemSettings { billingMode } userErrors { code }
  }
}
"""
CLIENT = "query($id: ID!) { client(id: $id) { canLogin validTill balance { amount } } }"
LIST = """
query($order: [ClientOrder!]) {
  clients(first: 10, orderBy: $order) { nodes { login canLogin } }
}
"""
MONEY: dict[str, str] = {
    "creditAdd": 'creditAdd(input: {clientId: $id, amount: "5", paymentMethod: CASH})',
    "creditDeduct": 'creditDeduct(input: {clientId: $id, amount: "1", reason: "fee"})',
    "creditNoteCreate": (
        'creditNoteCreate(input: {clientId: $id, lines: [{description: "x", unitAmount: "2"}]})'
    ),
    "creditEntryReverse": 'creditEntryReverse(entryId: $entry, reason: "wrong")',
}


def money(name: str) -> tuple[str, str]:
    """The mutation's document, and the variable it takes."""
    variable = "entry" if "$entry" in MONEY[name] else "id"
    return (
        f"mutation(${variable}: ID!) {{ r: {MONEY[name]} {{ userErrors {{ code }} }} }}",
        variable,
    )


async def test_everyone_reads_it_only_admins_change_it(
    api: GraphQLClient, factory: Factory
) -> None:
    manager = await factory.token(await factory.staff(role=StaffRole.MANAGER))
    admin = await factory.admin_token()
    # on by default, for every staff user
    assert (await api(SETTINGS, token=manager))["systemSettings"] == {
        "billingMode": True,
        "updatedAt": None,
    }
    # a manager may not change it
    assert error_codes(await api.errors(SET, {"on": False}, token=manager)) == ["FORBIDDEN"]
    # an admin may, and the change is audited
    changed = await api(SET, {"on": False}, token=admin)
    assert changed["systemSettingsUpdate"] == {
        "systemSettings": {"billingMode": False},
        "userErrors": [],
    }
    assert (await api(SETTINGS, token=manager))["systemSettings"]["billingMode"] is False
    audit = await api("{ auditLog(first: 5) { nodes { action before after } } }", token=admin)
    assert {
        "action": "settings.update",
        "before": {"billing_mode": True},
        "after": {"billing_mode": False},
    } in audit["auditLog"]["nodes"]


async def test_off_valid_till_no_longer_restricts_who_can_log_in(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given a client whose paid access ended, and one whose did not
    api.token = await factory.admin_token()
    expired = await factory.client(login="expired", valid_till=clock() - timedelta(days=1))
    paid = await factory.client(login="paid", valid_till=clock() + timedelta(days=1))
    ids = {c.login: gid("Client", c.id) for c in (expired, paid)}

    async def can_login() -> dict[str, Any]:
        one = {
            login: (await api(CLIENT, {"id": id_}))["client"]["canLogin"]
            for login, id_ in ids.items()
        }
        listed = (await api(LIST, {"order": [{"field": "LOGIN"}]}))["clients"]["nodes"]
        assert {n["login"]: n["canLogin"] for n in listed} == one  # the list says the same
        first = await api(LIST, {"order": [{"field": "CAN_LOGIN"}, {"field": "LOGIN"}]})
        return {"one": one, "sorted": [n["login"] for n in first["clients"]["nodes"]]}

    # then in Billing Mode the expired one cannot log in, and sorts first (ASC)
    assert await can_login() == {
        "one": {"expired": False, "paid": True},
        "sorted": ["expired", "paid"],
    }
    # when Billing Mode is turned off, both can, and sort by login
    await api(SET, {"on": False})
    assert await can_login() == {
        "one": {"expired": True, "paid": True},
        "sorted": ["expired", "paid"],
    }
    assert (await api(CLIENT, {"id": ids["expired"]}))["client"]["validTill"] is not None
    # and on again, as before
    await api(SET, {"on": True})
    assert (await can_login())["one"] == {"expired": False, "paid": True}


@pytest.mark.parametrize("name", list(MONEY))
async def test_off_no_money_moves(api: GraphQLClient, factory: Factory, name: str) -> None:
    # given a client with a payment
    api.token = await factory.admin_token()
    client = await factory.client(login="payer", credit_limit=Decimal(100))
    variables = {"id": gid("Client", client.id), "entry": gid("CreditEntry", 0)}
    paid = await api(
        'mutation($id: ID!) { creditAdd(input: {clientId: $id, amount: "10", '
        "paymentMethod: CASH}) { entry { id } userErrors { code } } }",
        {"id": variables["id"]},
    )
    variables["entry"] = paid["creditAdd"]["entry"]["id"]
    # when Billing Mode is off, the money mutation is refused and the balance stays
    await api(SET, {"on": False})
    document, variable = money(name)
    refused = await api(document, {variable: variables[variable]})
    assert refused["r"]["userErrors"] == [{"code": "BILLING_MODE_OFF"}]
    balance = (await api(CLIENT, {"id": variables["id"]}))["client"]["balance"]["amount"]
    assert Decimal(balance) == 10
    # and viewerCan said so
    can = await api(
        "query($id: ID!) { client(id: $id) { viewerCan { addCredit deductCredit update } } }",
        {"id": variables["id"]},
    )
    assert can["client"]["viewerCan"] == {"addCredit": False, "deductCredit": False, "update": True}
    # and a payment that went through before is still answered as it was, if retried
    if name == "creditAdd":
        keyed = (
            'mutation($id: ID!) { creditAdd(input: {clientId: $id, amount: "3", '
            'paymentMethod: CASH, idempotencyKey: "k1"}) { replayed userErrors { code } } }'
        )
        await api(SET, {"on": True})
        assert (await api(keyed, {"id": variables["id"]}))["creditAdd"]["replayed"] is False
        await api(SET, {"on": False})
        again = (await api(keyed, {"id": variables["id"]}))["creditAdd"]
        assert again == {"replayed": True, "userErrors": []}
    # and with it on again, it goes through
    await api(SET, {"on": True})
    assert (await api(document, {variable: variables[variable]}))["r"]["userErrors"] == []
