"""Deleting keeps a client restorable until the retention period ends: gone from every list
and count meanwhile, its login reserved; restored whole (fields, password, access lists,
custom values, connections, sub-account links, ledger); purged for good after the period."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.enums import ConnectionStatus, ConnectionType, CustomFieldType, StaffRole
from db.models import (
    NEXT_SQLITE_CLIENT_ID,
    Client,
    ClientConnection,
    CustomFieldDefinition,
    DeletedClient,
    Department,
)
from services import deletion
from tests.api import GraphQLClient
from tests.conftest import FakeClock
from tests.factories import Factory
from tests.gql.test_client_mutations import DELETE, STRONG, codes, create, gid

CARD = """
query($id: ID!) {
  client(id: $id) {
    id login name email phone country currency language status canLogin blocked
    creditLimit { amount } balance { amount currency } validTill priceAdjustmentPercent
    manager { email } parent { login } departments { name }
    customFields { definition { key } value } connections { type status }
    creditEntries(first: 10) { totalCount nodes { kind amount { amount } } }
    subAccounts(first: 10) { nodes { login } }
  }
}
"""
RESTORE = """
mutation($ids: [ID!]!) {
  clientsRestore(ids: $ids) { clients { login parent { login } } userErrors { field code message } }
}
"""
DELETED = """
query { deletedClients(first: 10) { nodes { id login name currency deletedAt purgeAt
  deletedBy { email } } } }
"""
COUNT = "query { clients(first: 1) { totalCount } }"
MONEY = """
mutation($id: ID!) {
  paid: creditAdd(input: {clientId: $id, amount: "12.00", paymentMethod: CASH}) {
    userErrors { code } }
  spent: creditDeduct(input: {clientId: $id, amount: "12.00", reason: "Usage"}) {
    userErrors { code } }
}
"""


async def card(api: GraphQLClient, pk: int) -> dict[str, Any] | None:
    return (await api(CARD, {"id": gid("Client", pk)}))["client"]  # type: ignore[no-any-return]


async def test_a_deleted_family_comes_back_whole(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    admin = await factory.staff(role=StaffRole.ADMIN, email="root@clientdesk.test")
    api.token = await factory.token(admin)
    manager = await factory.staff(role=StaffRole.MANAGER, email="mia@clientdesk.test")
    sales = Department(name="Sales")
    tier = CustomFieldDefinition(key="tier", label="Tier", type=CustomFieldType.TEXT)
    session.add_all([sales, tier])
    await session.commit()
    # given a parent with money history, access lists, a custom value and a connection
    made = await create(
        api,
        login="family",
        name="Family GmbH",
        phone="+4930123456",
        country="DE",
        managerId=gid("StaffUser", manager.id),
        creditLimit="250.00",
        departmentIds=[gid("Department", sales.id)],
        customFields=[{"key": "tier", "value": "gold"}],
    )
    assert made["userErrors"] == []
    parent = await session.scalar(select(Client).where(Client.login == "family"))
    assert parent is not None
    session.add(
        ClientConnection(
            client_id=parent.id, type=ConnectionType.SMPP, status=ConnectionStatus.ONLINE
        )
    )
    await session.commit()
    money = await api(MONEY, {"id": gid("Client", parent.id)})
    assert money["paid"]["userErrors"] == money["spent"]["userErrors"] == []
    kid = await factory.client(login="family.kid", parent_id=parent.id, currency="EUR")
    await session.commit()
    before = {pk: await card(api, pk) for pk in (parent.id, kid.id)}
    hashes = {
        pk: await session.scalar(select(Client.password_hash).where(Client.id == pk))
        for pk in (parent.id, kid.id)
    }
    count = (await api(COUNT))["clients"]["totalCount"]
    # when both are deleted
    ids = [gid("Client", parent.id), gid("Client", kid.id)]
    deleted = (await api(DELETE, {"ids": ids, "confirm": True}))["clientsDelete"]
    assert deleted["userErrors"] == []
    # then they are gone from the list and its count, and listed as deleted
    assert (await api(COUNT))["clients"]["totalCount"] == count - 2
    assert await card(api, parent.id) is None
    listed = (await api(DELETED))["deletedClients"]["nodes"]
    assert {n["login"] for n in listed} == {"family", "family.kid"}
    family = next(n for n in listed if n["login"] == "family")
    assert family["id"] == ids[0]
    assert family["deletedBy"] == {"email": "root@clientdesk.test"}
    assert family["purgeAt"] == (clock() + timedelta(days=30)).isoformat()
    # and their logins stay reserved
    taken = await create(api, login="Family")
    assert codes(taken) == [(["input", "login"], "LOGIN_TAKEN")]
    assert "deleted client" in taken["userErrors"][0]["message"]
    # when they are restored (the sub-account named first: parents go back first)
    clock.advance(timedelta(days=3))
    restored = (await api(RESTORE, {"ids": [ids[1], ids[0]]}))["clientsRestore"]
    assert restored["userErrors"] == []
    assert {c["login"]: c["parent"] for c in restored["clients"]} == {
        "family.kid": {"login": "family"},
        "family": None,
    }
    # then they are as they were: fields, access lists, custom value, connection, link,
    # ledger (and a balance that is its sum), password
    for pk in (parent.id, kid.id):
        assert await card(api, pk) == before[pk]
        assert (
            await session.scalar(select(Client.password_hash).where(Client.id == pk))
            == (hashes[pk])
        )
    assert (await api(COUNT))["clients"]["totalCount"] == count
    assert (await api(DELETED))["deletedClients"]["nodes"] == []
    assert codes(await create(api, login="family")) == [(["input", "login"], "LOGIN_TAKEN")]
    # restoring again finds nothing to restore
    again = (await api(RESTORE, {"ids": [ids[0]]}))["clientsRestore"]
    assert codes(again) == [(["ids", "0"], "NOT_FOUND")]
    audit = await api(
        'query { auditLog(filter: {actions: ["client.restore"]}) { nodes { targetLabel } } }'
    )
    assert sorted(n["targetLabel"] for n in audit["auditLog"]["nodes"]) == [
        "family",
        "family.kid",
    ]


async def test_purged_after_the_retention_period(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    api.token = await factory.admin_token()
    old = await factory.client(login="old.one")
    await session.commit()
    deleted_at = clock()
    assert (await api(DELETE, {"ids": [gid("Client", old.id)], "confirm": True}))["clientsDelete"][
        "userErrors"
    ] == []
    retention = timedelta(days=30)
    # a moment before the period ends: kept
    clock.advance(retention - timedelta(seconds=1))
    assert await deletion.purge_expired(sessionmaker, now=clock(), retention=retention) == 0
    # at its end: purged, the login free, nothing left to restore; the ledger and audit stay
    clock.advance(timedelta(seconds=1))
    assert await deletion.purge_expired(sessionmaker, now=clock(), retention=retention) == 1
    assert await session.get(DeletedClient, old.id, populate_existing=True) is None
    gone = (await api(RESTORE, {"ids": [gid("Client", old.id)]}))["clientsRestore"]
    assert codes(gone) == [(["ids", "0"], "NOT_FOUND")]
    assert (await create(api, login="old.one"))["userErrors"] == []
    audit = await api(
        'query { auditLog(filter: {actions: ["client.delete"]}) { nodes { occurredAt before } } }'
    )
    [entry] = audit["auditLog"]["nodes"]
    assert entry["occurredAt"] == deleted_at.isoformat()
    assert entry["before"]["login"] == "old.one"


async def test_managers_restore_their_own_and_only_admins_list(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    mia = await factory.staff(role=StaffRole.MANAGER)
    bob = await factory.staff(role=StaffRole.MANAGER)
    mine = await factory.client(login="mias", manager_id=mia.id)
    theirs = await factory.client(login="bobs", manager_id=bob.id)
    admin_token = await factory.admin_token()
    await session.commit()
    ids = [gid("Client", mine.id), gid("Client", theirs.id)]
    deleted = await api(DELETE, {"ids": ids, "confirm": True}, token=admin_token)
    assert deleted["clientsDelete"]["userErrors"] == []
    api.token = await factory.token(mia)
    # a manager does not see the list of deleted clients
    errors = await api.errors(DELETED)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    # nor restores another manager's (and then nothing is restored)
    refused = await api.errors(RESTORE, {"ids": ids})
    assert refused[0]["extensions"]["code"] == "FORBIDDEN"
    assert refused[0]["extensions"]["fields"] == [["ids", "1"]]
    assert await session.scalar(select(Client.id).where(Client.login == "mias")) is None
    # but restores their own
    ok = (await api(RESTORE, {"ids": ids[:1]}))["clientsRestore"]
    assert ok["userErrors"] == []
    assert [c["login"] for c in ok["clients"]] == ["mias"]


@pytest.mark.parametrize("ids", [[], ["Q2xpZW50OjE="] * 501])
async def test_restore_checks_its_list(
    api: GraphQLClient, factory: Factory, ids: list[str]
) -> None:
    api.token = await factory.admin_token()
    payload = (await api(RESTORE, {"ids": ids}))["clientsRestore"]
    assert codes(payload) == [(["ids"], "REQUIRED" if not ids else "TOO_MANY")]


async def test_a_restored_client_keeps_its_money_straight(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    client = await factory.client(login="money")
    await session.commit()
    assert (await api(MONEY, {"id": gid("Client", client.id)}))["paid"]["userErrors"] == []
    assert (await api(DELETE, {"ids": [gid("Client", client.id)], "confirm": True}))[
        "clientsDelete"
    ]["userErrors"] == []
    restored = (await api(RESTORE, {"ids": [gid("Client", client.id)]}))["clientsRestore"]
    assert restored["userErrors"] == []
    shown = await card(api, client.id)
    assert shown is not None
    assert shown["balance"]["amount"] == "0.00"
    assert shown["creditEntries"]["totalCount"] == 2
    # and money moves again, on top of the ledger it had
    paid = await api(
        'mutation($id: ID!) { creditAdd(input: {clientId: $id, amount: "5.00", '
        "paymentMethod: CASH}) { client { balance { amount } } userErrors { code } } }",
        {"id": gid("Client", client.id)},
    )
    assert paid["creditAdd"]["client"]["balance"]["amount"] == "5.00"
    assert Decimal(paid["creditAdd"]["client"]["balance"]["amount"]) == Decimal("5.00")
    assert STRONG  # (the shared password of created clients; restored hashes are compared above)


async def test_a_purged_clients_id_is_never_given_again(
    api: GraphQLClient,
    factory: Factory,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    api.token = await factory.admin_token()
    # given the newest client, with a ledger, deleted and then purged
    made = await create(api, login="newest")
    newest = await session.scalar(select(Client.id).where(Client.login == "newest"))
    assert newest is not None
    assert made["userErrors"] == []
    assert (await api(MONEY, {"id": gid("Client", newest)}))["paid"]["userErrors"] == []
    assert (await api(DELETE, {"ids": [gid("Client", newest)], "confirm": True}))["clientsDelete"][
        "userErrors"
    ] == []
    clock.advance(timedelta(days=30))
    assert await deletion.purge_expired(sessionmaker, now=clock(), retention=timedelta(30)) == 1
    # when a client is created on another connection (the ids given in one transaction are
    # remembered on its connection; a new one knows only the tables: SQLite would give the
    # highest id + 1)
    connection = await session.connection()
    connection.sync_connection.info.pop(NEXT_SQLITE_CLIENT_ID, None)  # type: ignore[union-attr]
    assert (await create(api, login="later"))["userErrors"] == []
    later = await session.scalar(select(Client.id).where(Client.login == "later"))
    # then it gets a new id, and none of the purged client's ledger
    assert later is not None
    assert later > newest
    shown = await card(api, later)
    assert shown is not None
    assert shown["creditEntries"]["totalCount"] == 0


async def test_a_sub_account_whose_parent_moved_comes_back_top_level(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    top = await factory.client(login="top")
    parent = await factory.client(login="parent")
    child = await factory.client(login="child", parent_id=parent.id)
    await session.commit()
    assert (await api(DELETE, {"ids": [gid("Client", child.id)], "confirm": True}))[
        "clientsDelete"
    ]["userErrors"] == []
    # the parent is itself a sub-account now (allowed: it has no sub-accounts left)
    linked = await api(
        "mutation($p: ID!, $c: ID!) { clientLink(parentId: $p, childId: $c) "
        "{ userErrors { code } } }",
        {"p": gid("Client", top.id), "c": gid("Client", parent.id)},
    )
    assert linked["clientLink"]["userErrors"] == []
    restored = (await api(RESTORE, {"ids": [gid("Client", child.id)]}))["clientsRestore"]
    assert restored["userErrors"] == []
    # one level deep, as everywhere: the child comes back on its own, and the audit says why
    assert restored["clients"] == [{"login": "child", "parent": None}]
    audit = await api(
        'query { auditLog(filter: {actions: ["client.restore"]}) { nodes { after } } }'
    )
    [entry] = audit["auditLog"]["nodes"]
    assert "restored top-level" in entry["after"]["notes"][0]
