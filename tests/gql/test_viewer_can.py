"""`Client.viewerCan` says what the mutation then does: for each role and token, on clients
of every relation to the viewer, each action is refused (FORBIDDEN, or NOT_ALLOWED for a
client of a bulk action) exactly where viewerCan says false."""

from typing import Any

import pytest

from db.enums import Scope, StaffRole
from services.auth import ROLE_SCOPES
from tests.api import GraphQLClient
from tests.factories import Factory
from tests.gql.test_clients_list import gid

VIEWER_CAN = """
query($id: ID!) {
  client(id: $id) {
    viewerCan {
      update delete addCredit deductCredit block link impersonate setPriceAdjustment
      sendLoginDetails
    }
  }
}
"""
# each action as its mutation; $id the client, $parent a client the viewer may change
ACTIONS: dict[str, tuple[str, str]] = {
    "update": (
        'mutation($id: ID!) { r: clientUpdate(id: $id, input: {name: "N"}) { userErrors '
        "{ code } } }",
        "r",
    ),
    "setPriceAdjustment": (
        'mutation($id: ID!) { r: clientPriceAdjustmentSet(id: $id, percent: "5") '
        "{ userErrors { code } } }",
        "r",
    ),
    "addCredit": (
        'mutation($id: ID!) { r: creditAdd(input: {clientId: $id, amount: "5", '
        "paymentMethod: CASH}) { userErrors { code } } }",
        "r",
    ),
    "deductCredit": (
        'mutation($id: ID!) { r: creditDeduct(input: {clientId: $id, amount: "1", '
        'reason: "fee"}) { userErrors { code } } }',
        "r",
    ),
    "impersonate": (
        'mutation($id: ID!) { r: clientImpersonate(id: $id, reason: "help") '
        "{ userErrors { code } } }",
        "r",
    ),
    "link": (
        "mutation($id: ID!, $parent: ID!) { r: clientLink(parentId: $parent, childId: $id) "
        "{ userErrors { code } } }",
        "r",
    ),
    "block": (
        'mutation($id: ID!) { r: clientBlock(id: $id, reason: "why") { userErrors { code } } }',
        "r",
    ),
    "sendLoginDetails": (
        "mutation($id: ID!) { r: clientLoginDetailsSend(id: $id) { userErrors { code } } }",
        "r",
    ),
    # last: deleting (refused while the client has a balance) leaves nothing for the others
    "delete": (
        "mutation($id: ID!) { r: clientsDelete(ids: [$id], confirm: true) "
        "{ userErrors { code } } }",
        "r",
    ),
}
TOKENS = {
    "admin": (StaffRole.ADMIN, None),
    "admin, read only": (StaffRole.ADMIN, {Scope.CLIENTS_READ}),
    "manager": (StaffRole.MANAGER, None),
    "manager, read and credits": (StaffRole.MANAGER, {Scope.CLIENTS_READ, Scope.CREDITS_WRITE}),
}
RELATIONS = ("own", "sub-account of own", "another manager's", "unassigned")


async def refused(api: GraphQLClient, action: str, variables: dict[str, Any], token: str) -> bool:
    text, name = ACTIONS[action]
    response = await api.post(text, variables, token=token)
    body = response.json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
    assert set(codes) <= {"FORBIDDEN"}, body
    if codes:
        return True
    return "NOT_ALLOWED" in [e["code"] for e in body["data"][name]["userErrors"]]


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("who", list(TOKENS))
async def test_viewer_can_agrees_with_each_mutation(
    api: GraphQLClient, factory: Factory, who: str, relation: str
) -> None:
    # given a viewer, a manager with clients, and a client of the given relation
    role, scopes = TOKENS[who]
    viewer = await factory.staff(role=role)
    token = await factory.token(viewer, scopes=scopes or set(ROLE_SCOPES[role]))
    other = await factory.staff(role=StaffRole.MANAGER)
    owner = viewer if role is StaffRole.MANAGER else other
    own = await factory.client(manager_id=owner.id, phone="+4915112345678")
    parent = await factory.client(manager_id=viewer.id)
    target = {
        "own": own,
        "sub-account of own": await factory.client(manager_id=other.id, parent_id=own.id),
        "another manager's": await factory.client(manager_id=other.id),
        "unassigned": await factory.client(),
    }[relation]
    variables = {"id": gid("Client", target.id), "parent": gid("Client", parent.id)}
    # when the viewer asks what it may do
    read = await api(VIEWER_CAN, {"id": variables["id"]}, token=token)
    can = read["client"]["viewerCan"]
    # then every mutation is refused exactly where viewerCan says false
    done = {action: not await refused(api, action, variables, token) for action in ACTIONS}
    assert done == {action: can[action] for action in ACTIONS}
    # and the case is not vacuous: an admin may do all, a manager to another's client nothing
    if who == "admin":
        assert all(can.values())
    if role is StaffRole.MANAGER and relation in ("another manager's", "unassigned"):
        assert not any(can.values())
