"""`ownership: OWN_AND_SUB_ACCOUNTS` lists exactly the clients a manager may change, even
sub-accounts that another manager (or nobody) manages."""

from db.enums import Scope, StaffRole
from tests.api import GraphQLClient
from tests.factories import Factory
from tests.gql.test_clients_list import gid

PAGE = """
query($ownership: [ClientOwnership!]) {
  clients(first: 50, filter: {ownership: $ownership}, orderBy: [{field: LOGIN}]) {
    nodes { id login }
  }
}
"""
RENAME = """
mutation($id: ID!) { clientUpdate(id: $id, input: {name: "Renamed"}) { userErrors { code } } }
"""


async def test_a_managers_list_is_what_the_manager_may_change(
    api: GraphQLClient, factory: Factory
) -> None:
    # given a manager's client with two sub-accounts (one another manager's, one nobody's),
    # another manager's client, and an unassigned one
    manager = await factory.staff(role=StaffRole.MANAGER)
    other = await factory.staff(role=StaffRole.MANAGER)
    parent = await factory.client(login="own-parent", manager_id=manager.id)
    await factory.client(login="own-sub-other", manager_id=other.id, parent_id=parent.id)
    await factory.client(login="own-sub-nobody", parent_id=parent.id)
    others = await factory.client(login="others-client", manager_id=other.id)
    await factory.client(login="nobodys-client")
    token = await factory.token(manager, scopes={Scope.CLIENTS_READ, Scope.CLIENTS_WRITE})

    async def listed(*ownership: str) -> list[str]:
        data = await api(PAGE, {"ownership": list(ownership)}, token=token)
        ids.update({node["login"]: node["id"] for node in data["clients"]["nodes"]})
        return [node["login"] for node in data["clients"]["nodes"]]

    ids: dict[str, str] = {}

    # when the manager lists theirs, then OWN is the one client, and with sub-accounts three
    assert await listed("OWN") == ["own-parent"]
    assert await listed("OWN_AND_SUB_ACCOUNTS") == ["own-parent", "own-sub-nobody", "own-sub-other"]
    # and each of those the manager may change; another manager's client not
    for login in await listed("OWN_AND_SUB_ACCOUNTS"):
        listed_id = (
            await api("query($l: String) { client(login: $l) { id } }", {"l": login}, token=token)
        )["client"]["id"]
        data = await api(RENAME, {"id": listed_id}, token=token)
        assert data["clientUpdate"]["userErrors"] == []
    refused = await api.errors(RENAME, {"id": gid("Client", others.id)}, token=token)
    assert refused[0]["extensions"]["code"] == "FORBIDDEN"
