"""Blocks that expire by themselves, linked sub-accounts, and audited "In cabinet" tokens."""

import base64
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ClientStatus, Scope, StaffRole
from db.models import Client
from services.actors import Actor
from services.clients import update_client
from services.errors import ErrorCode, ValidationFailed
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

BLOCK = """
mutation($id: ID!, $reason: String!, $until: DateTime) {
  clientBlock(id: $id, reason: $reason, until: $until) {
    client { blocked canLogin block { reason blockedAt blockedUntil blockedBy { email } } }
    userErrors { field code message }
  }
}
"""
UNBLOCK = """
mutation($id: ID!) {
  clientUnblock(id: $id) { client { blocked block { reason } } userErrors { field code message } }
}
"""
LINK = """
mutation($parent: ID!, $child: ID!) {
  clientLink(parentId: $parent, childId: $child) {
    parent { login subAccounts { totalCount nodes { login } } }
    child { login parent { login } }
    userErrors { field code message }
  }
}
"""
UNLINK = """
mutation($child: ID!) {
  clientUnlink(childId: $child) {
    parent { login subAccounts { totalCount } } child { login parent { login } }
    userErrors { field code message }
  }
}
"""
IMPERSONATE = """
mutation($id: ID!, $reason: String!, $force: Boolean) {
  clientImpersonate(id: $id, reason: $reason, force: $force) {
    token expiresAt cabinetUrl client { login } userErrors { field code message }
  }
}
"""
AUDIT = """
query($f: AuditLogFilter) {
  auditLog(filter: $f) { nodes { action before after reason actorEmail } }
}
"""
STATE = """
query($login: String!, $filter: ClientFilter) {
  client(login: $login) { blocked canLogin block { reason } }
  clients(filter: $filter, first: 100) { nodes { login } }
  clientStats(filter: $filter) { blocked }
}
"""


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def codes(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


@pytest.fixture
async def admin(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.token(await factory.staff(email="root@clientdesk.test"))
    return api.token


# --- blocks --------------------------------------------------------------------------------


@pytest.mark.usefixtures("admin")
async def test_a_block_expires_between_two_queries_without_any_job(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    client = await factory.client(login="spammer")
    until = clock() + timedelta(hours=2)
    blocked = (
        await api(
            BLOCK, {"id": gid("Client", client.id), "reason": "Spam", "until": until.isoformat()}
        )
    )["clientBlock"]
    assert blocked["userErrors"] == []
    assert blocked["client"] == {
        "blocked": True,
        "canLogin": False,
        "block": {
            "reason": "Spam",
            "blockedAt": clock().isoformat(),
            "blockedUntil": until.isoformat(),
            "blockedBy": {"email": "root@clientdesk.test"},
        },
    }
    # while it lasts, every view agrees
    during = await api(STATE, {"login": "spammer", "filter": {"blocked": True}})
    assert during["client"]["blocked"] is True
    assert [n["login"] for n in during["clients"]["nodes"]] == ["spammer"]
    assert during["clientStats"]["blocked"] == 1
    # when its time has come (the clock moves, nothing runs)
    clock.advance(timedelta(hours=2))
    after = await api(STATE, {"login": "spammer", "filter": {"blocked": True}})
    assert after["client"] == {"blocked": False, "canLogin": True, "block": None}
    assert after["clients"]["nodes"] == []
    assert after["clientStats"]["blocked"] == 0
    unblocked = (await api(UNBLOCK, {"id": gid("Client", client.id)}))["clientUnblock"]
    assert codes(unblocked) == [(["id"], "NOT_BLOCKED")]


@pytest.mark.usefixtures("admin")
async def test_reblocking_updates_the_block_and_both_are_audited(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    client = await factory.client(login="repeat")
    cid = gid("Client", client.id)
    first = clock()
    await api(BLOCK, {"id": cid, "reason": "Unpaid invoice"})
    clock.advance(timedelta(hours=1))
    until = clock() + timedelta(days=3)
    again = (await api(BLOCK, {"id": cid, "reason": "Fraud check", "until": until.isoformat()}))[
        "clientBlock"
    ]
    assert again["client"]["block"]["reason"] == "Fraud check"
    assert again["client"]["block"]["blockedUntil"] == until.isoformat()
    assert again["client"]["block"]["blockedAt"] == first.isoformat()  # the block goes on
    lifted = (await api(UNBLOCK, {"id": cid}))["clientUnblock"]
    assert lifted == {"client": {"blocked": False, "block": None}, "userErrors": []}
    entries = (await api(AUDIT, {"f": {"targetId": cid}}))["auditLog"]["nodes"]
    assert [e["action"] for e in entries] == ["client.unblock", "client.block", "client.block"]
    assert entries[1]["before"]["block_reason"] == "Unpaid invoice"
    assert entries[1]["after"]["block_reason"] == "Fraud check"
    assert entries[1]["reason"] == "Fraud check"
    assert entries[0]["after"]["blocked_at"] is None


@pytest.mark.usefixtures("admin")
async def test_block_input_rules(api: GraphQLClient, factory: Factory, clock: FakeClock) -> None:
    cid = gid("Client", (await factory.client(login="rules")).id)
    assert codes((await api(BLOCK, {"id": cid, "reason": " "}))["clientBlock"]) == [
        (["reason"], "REQUIRED")
    ]
    assert codes((await api(BLOCK, {"id": cid, "reason": "x" * 501}))["clientBlock"]) == [
        (["reason"], "TOO_LONG")
    ]
    past = (clock() - timedelta(seconds=1)).isoformat()
    assert codes((await api(BLOCK, {"id": cid, "reason": "x", "until": past}))["clientBlock"]) == [
        (["until"], "INVALID")
    ]
    assert codes(
        (await api(BLOCK, {"id": gid("Client", 10**9), "reason": "x"}))["clientBlock"]
    ) == [(["id"], "NOT_FOUND")]
    assert codes((await api(UNBLOCK, {"id": cid}))["clientUnblock"]) == [(["id"], "NOT_BLOCKED")]


# --- links ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("admin")
async def test_link_and_unlink(api: GraphQLClient, factory: Factory) -> None:
    parent = await factory.client(login="parent", currency="EUR")
    child = await factory.client(login="child", currency="EUR")
    linked = (
        await api(LINK, {"parent": gid("Client", parent.id), "child": gid("Client", child.id)})
    )["clientLink"]
    assert linked["userErrors"] == []
    assert linked["parent"]["subAccounts"] == {"totalCount": 1, "nodes": [{"login": "child"}]}
    assert linked["child"]["parent"] == {"login": "parent"}
    unlinked = (await api(UNLINK, {"child": gid("Client", child.id)}))["clientUnlink"]
    assert unlinked["parent"] == {"login": "parent", "subAccounts": {"totalCount": 0}}
    assert unlinked["child"]["parent"] is None
    again = (await api(UNLINK, {"child": gid("Client", child.id)}))["clientUnlink"]
    assert codes(again) == [(["childId"], "NOT_LINKED")]
    entries = (await api(AUDIT, {"f": {"targetId": gid("Client", child.id)}}))["auditLog"]["nodes"]
    assert [(e["action"], e["before"], e["after"]) for e in entries] == [
        ("client.unlink", {"parent_id": parent.id}, {"parent_id": None}),
        ("client.link", {"parent_id": None}, {"parent_id": parent.id, "parent_login": "parent"}),
    ]


@pytest.mark.usefixtures("admin")
async def test_link_rules(api: GraphQLClient, factory: Factory, session: AsyncSession) -> None:
    top = await factory.client(login="top", currency="EUR")
    sub = await factory.client(login="sub", currency="EUR", parent_id=top.id)
    lone = await factory.client(login="lone", currency="EUR")
    other_top = await factory.client(login="other.top", currency="EUR")
    dollars = await factory.client(login="dollars", currency="USD")
    gone = await factory.client(login="gone", currency="EUR")
    await session.delete(gone)
    await session.commit()

    async def link(parent: Any, child: Any) -> list[tuple[list[str] | None, str]]:
        ids = {
            "parent": gid("Client", parent)
            if isinstance(parent, int)
            else gid("Client", parent.id),
            "child": gid("Client", child) if isinstance(child, int) else gid("Client", child.id),
        }
        return codes((await api(LINK, ids))["clientLink"])

    assert await link(lone, lone) == [(["childId"], "SELF_LINK")]
    assert await link(lone, 10**9) == [(["childId"], "NOT_FOUND")]
    assert await link(gone.id, lone) == [(["parentId"], "NOT_FOUND")]
    assert await link(other_top, sub) == [(["childId"], "ALREADY_LINKED")]
    assert await link(sub, lone) == [(["parentId"], "PARENT_IS_SUB_ACCOUNT")]
    assert await link(lone, top) == [(["childId"], "CHILD_HAS_SUB_ACCOUNTS")]
    assert await link(dollars, lone) == [(["childId"], "CURRENCY_MISMATCH")]
    assert await link(sub, top) == [(["childId"], "CYCLE")]  # two nodes: top -> sub -> top


@pytest.mark.usefixtures("admin")
async def test_a_three_node_cycle_is_refused(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    # given a chain a <- b <- c, as older data (or a looser rule) could hold it
    a = await factory.client(login="node.a")
    b = await factory.client(login="node.b", parent_id=a.id)
    c = await factory.client(login="node.c")
    await session.execute(update(Client).where(Client.id == c.id).values(parent_id=b.id))
    await session.commit()
    # when a is put under c, closing a -> b -> c -> a
    payload = (await api(LINK, {"parent": gid("Client", c.id), "child": gid("Client", a.id)}))[
        "clientLink"
    ]
    # then it is refused as a loop, before any other rule
    assert codes(payload) == [(["childId"], "CYCLE")]
    assert "node.a is above node.c" in payload["userErrors"][0]["message"]


async def test_managers_link_only_their_own_clients(api: GraphQLClient, factory: Factory) -> None:
    mia = await factory.staff(role=StaffRole.MANAGER)
    token = await factory.token(mia)
    own = await factory.client(login="own", manager_id=mia.id)
    also_own = await factory.client(login="also.own", manager_id=mia.id)
    foreign = await factory.client(login="foreign")
    ok = (
        await api(
            LINK,
            {"parent": gid("Client", own.id), "child": gid("Client", also_own.id)},
            token=token,
        )
    )["clientLink"]
    assert ok["userErrors"] == []
    errors = await api.errors(
        LINK, {"parent": gid("Client", own.id), "child": gid("Client", foreign.id)}, token=token
    )
    assert error_codes(errors) == ["FORBIDDEN"]


OWNED_BY = "query($login: String!) { client(login: $login) { manager { email } parent { login } } }"
RENAME = """
mutation($id: ID!, $input: ClientUpdateInput!) {
  clientUpdate(id: $id, input: $input) { client { name manager { email } } userErrors { code } }
}
"""


async def test_a_manager_cannot_take_another_managers_sub_account(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    # given an admin who links B's client under A's client
    admin = await factory.admin_token()
    anna = await factory.staff(role=StaffRole.MANAGER)
    bert = await factory.staff(role=StaffRole.MANAGER)
    annas_token, berts_token = await factory.token(anna), await factory.token(bert)
    parent = await factory.client(login="annas", manager_id=anna.id)
    child = await factory.client(login="berts", manager_id=bert.id)
    anna_id, anna_email, child_id, bert_email = anna.id, anna.email, child.id, bert.email
    linked = (
        await api(
            LINK,
            {"parent": gid("Client", parent.id), "child": gid("Client", child_id)},
            token=admin,
        )
    )["clientLink"]
    assert linked["userErrors"] == []
    # when A sets managerId to herself, then it is refused (staff:admin, which managers lack)
    take = {"id": gid("Client", child_id), "input": {"managerId": gid("StaffUser", anna.id)}}
    errors = await api.errors(RENAME, take, token=annas_token)
    assert errors[0]["extensions"]["reason"] == "MISSING_SCOPE"
    # and the rules below the API refuse it too: the sub-account has its own manager
    actor = Actor(anna_id, anna_email, StaffRole.MANAGER, clock())
    with pytest.raises(ValidationFailed) as refused:
        await update_client(
            session, actor=actor, client_id=child_id, values={"manager_id": anna_id}
        )
    assert [(e.code, e.field) for e in refused.value.errors] == [
        (ErrorCode.NOT_ALLOWED, ["manager_id"])
    ]
    await session.rollback()
    # when A (the parent's manager) unlinks it, then it goes back to B alone
    unlinked = (await api(UNLINK, {"child": gid("Client", child_id)}, token=annas_token))[
        "clientUnlink"
    ]
    assert unlinked["userErrors"] == []
    assert (await api(OWNED_BY, {"login": "berts"}, token=admin))["client"] == {
        "manager": {"email": bert_email},
        "parent": None,
    }
    rename = {"id": gid("Client", child_id), "input": {"name": "Still Bert's"}}
    assert refused_reason(await api.errors(RENAME, rename, token=annas_token)) == "NOT_YOUR_CLIENT"
    done = (await api(RENAME, rename, token=berts_token))["clientUpdate"]
    assert done == {
        "client": {"name": "Still Bert's", "manager": {"email": bert_email}},
        "userErrors": [],
    }


def refused_reason(errors: list[dict[str, Any]]) -> str:
    assert error_codes(errors) == ["FORBIDDEN"]
    return str(errors[0]["extensions"]["reason"])


# --- In cabinet ----------------------------------------------------------------------------


async def open_cabinet(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get("/cabinet/session", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.usefixtures("admin")
async def test_impersonation_token_opens_one_clients_cabinet(
    api: GraphQLClient, http: httpx.AsyncClient, factory: Factory, clock: FakeClock
) -> None:
    client = await factory.client(login="acme", name="Acme", currency="KWD")
    issued = (await api(IMPERSONATE, {"id": gid("Client", client.id), "reason": "Ticket #812"}))[
        "clientImpersonate"
    ]
    assert issued["userErrors"] == []
    assert issued["expiresAt"] == (clock() + timedelta(minutes=15)).isoformat()
    assert (
        issued["cabinetUrl"] == f"http://127.0.0.1:8000/cabinet/impersonate#token={issued['token']}"
    )
    opened = await open_cabinet(http, issued["token"])
    assert opened.status_code == 200
    assert opened.json() == {
        "client": {
            "login": "acme",
            "name": "Acme",
            "currency": "KWD",
            "balance": "0.000",
            "language": None,
        },
        "impersonatedBy": "root@clientdesk.test",
        "expiresAt": issued["expiresAt"],
    }
    entries = (await api(AUDIT, {"f": {"targetId": gid("Client", client.id)}}))["auditLog"]["nodes"]
    assert entries[0]["action"] == "client.impersonate"
    assert entries[0]["reason"] == "Ticket #812"
    assert entries[0]["actorEmail"] == "root@clientdesk.test"
    assert entries[0]["after"]["forced"] is False
    # 15 minutes later the token no longer works
    clock.advance(timedelta(minutes=15))
    expired = await open_cabinet(http, issued["token"])
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "TOKEN_EXPIRED")


@pytest.mark.usefixtures("admin")
async def test_tampered_and_foreign_tokens_are_refused(
    api: GraphQLClient, http: httpx.AsyncClient, factory: Factory
) -> None:
    client = await factory.client(login="acme")
    other = await factory.client(login="other")
    token = (await api(IMPERSONATE, {"id": gid("Client", client.id), "reason": "check"}))[
        "clientImpersonate"
    ]["token"]
    header, _, signature = token.split(".")
    # the same token pointing at another client, signature kept
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(
        {**claims, "sub": str(other.id)}, "a-guessed-secret-" * 3, algorithm="HS256"
    )
    swapped = ".".join([header, forged.split(".")[1], signature])
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    for bad in (
        swapped,
        forged,
        unsigned,
        token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        "nonsense",
    ):
        refused = await open_cabinet(http, bad)
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "INVALID_TOKEN"), bad
    assert (await http.get("/cabinet/session")).status_code == 401


async def test_blocked_or_inactive_clients_need_an_admins_force(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    admin = await factory.token(await factory.staff(role=StaffRole.ADMIN))
    manager_user = await factory.staff(role=StaffRole.MANAGER)
    manager = await factory.token(manager_user)
    blocked = await factory.client(
        login="blocked",
        manager_id=manager_user.id,
        block_reason="x",
        blocked_at=clock() - timedelta(days=1),
    )
    inactive = await factory.client(
        login="inactive", manager_id=manager_user.id, status=ClientStatus.INACTIVE
    )
    for client in (blocked, inactive):
        refused = (
            await api(IMPERSONATE, {"id": gid("Client", client.id), "reason": "r"}, token=admin)
        )["clientImpersonate"]
        assert codes(refused) == [(["id"], "CLIENT_CANNOT_LOGIN")]
        assert refused["token"] is None
        by_manager = (
            await api(
                IMPERSONATE,
                {"id": gid("Client", client.id), "reason": "r", "force": True},
                token=manager,
            )
        )["clientImpersonate"]
        assert codes(by_manager) == [(["force"], "NOT_ALLOWED")]
        forced = (
            await api(
                IMPERSONATE,
                {"id": gid("Client", client.id), "reason": "Legal hold", "force": True},
                token=admin,
            )
        )["clientImpersonate"]
        assert forced["userErrors"] == []
        assert forced["token"]
    entries = (await api(AUDIT, {"f": {"actions": ["client.impersonate"]}}, token=admin))[
        "auditLog"
    ]["nodes"]
    assert [e["after"]["forced"] for e in entries] == [True, True]
    assert all(e["reason"] == "Legal hold" for e in entries)


async def test_impersonation_needs_its_scope_and_a_reason(
    api: GraphQLClient, factory: Factory
) -> None:
    scopes = {Scope.CLIENTS_READ, Scope.CLIENTS_WRITE}
    token = await factory.token(await factory.staff(), scopes=scopes)
    client = await factory.client(login="acme")
    errors = await api.errors(
        IMPERSONATE, {"id": gid("Client", client.id), "reason": "x"}, token=token
    )
    assert errors[0]["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "MISSING_SCOPE",
        "scope": "clients:impersonate",
    }
    admin = await factory.admin_token()
    no_reason = (
        await api(IMPERSONATE, {"id": gid("Client", client.id), "reason": ""}, token=admin)
    )["clientImpersonate"]
    assert codes(no_reason) == [(["reason"], "REQUIRED")]
