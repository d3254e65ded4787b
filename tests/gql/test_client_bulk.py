"""Bulk actions by ids or by filter: a preview that changes nothing and equals what the run
then does; a run that applies the allowed part and reports the rest by id; a selection that
changed since the preview refuses the run."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ClientStatus, Scope, StaffRole
from db.models import AuditEntry, Client
from tests.api import GraphQLClient
from tests.factories import Factory
from tests.gql.test_client_mutations import gid, row_counts

PREVIEW = """
mutation($selection: ClientSelection!, $action: ClientBulkAction!) {
  clientsBulkPreview(selection: $selection, action: $action) {
    preview { total willChange unchanged refused fingerprint
              refusals { code count samples { login } } }
    userErrors { field code message }
  }
}
"""
RUN = """
mutation($selection: ClientSelection!, $action: ClientBulkAction!, $fingerprint: String!) {
  clientsBulkRun(selection: $selection, action: $action, fingerprint: $fingerprint) {
    changedIds unchangedIds refusals { clientId code message }
    userErrors { field code message }
  }
}
"""


async def preview(api: GraphQLClient, selection: dict[str, Any], action: dict[str, Any]) -> Any:
    return (await api(PREVIEW, {"selection": selection, "action": action}))["clientsBulkPreview"]


async def run(
    api: GraphQLClient, selection: dict[str, Any], action: dict[str, Any], fingerprint: str
) -> Any:
    variables = {"selection": selection, "action": action, "fingerprint": fingerprint}
    return (await api(RUN, variables))["clientsBulkRun"]


async def test_delete_the_ones_that_can_be_deleted(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    plain = await factory.client(login="plain")
    other = await factory.client(login="other")
    rich = await factory.client(login="rich", balance=Decimal("10.50"), credit_limit=Decimal(0))
    parent = await factory.client(login="parent")
    await factory.client(login="stays", parent_id=parent.id)
    await session.commit()
    selection = {"ids": [gid("Client", c.id) for c in (plain, rich, parent, other)]}
    before = await row_counts(session)
    # the preview tells what would happen, and changes nothing
    shown = await preview(api, selection, {"delete": True})
    assert shown["userErrors"] == []
    found = shown["preview"]
    assert (found["total"], found["willChange"], found["unchanged"], found["refused"]) == (
        4,
        2,
        0,
        2,
    )
    assert {(g["code"], g["count"], g["samples"][0]["login"]) for g in found["refusals"]} == {
        ("HAS_BALANCE", 1, "rich"),
        ("HAS_SUB_ACCOUNTS", 1, "parent"),
    }
    assert await row_counts(session) == before
    # the run does what the preview said: the deletable ones go, the others are named
    done = await run(api, selection, {"delete": True}, found["fingerprint"])
    assert done["userErrors"] == []
    assert sorted(done["changedIds"]) == sorted([gid("Client", plain.id), gid("Client", other.id)])
    assert {(r["clientId"], r["code"]) for r in done["refusals"]} == {
        (gid("Client", rich.id), "HAS_BALANCE"),
        (gid("Client", parent.id), "HAS_SUB_ACCOUNTS"),
    }
    left = set(await session.scalars(select(Client.login)))
    assert {"rich", "parent", "stays"} <= left
    assert not {"plain", "other"} & left
    deleted = await session.scalars(
        select(AuditEntry.target_label).where(AuditEntry.action == "client.delete")
    )
    assert sorted(deleted) == ["other", "plain"]


async def test_a_selection_that_changed_refuses_the_run(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    for n in range(3):
        await factory.client(login=f"kw{n}", country="KW", status=ClientStatus.ACTIVE)
    await session.commit()
    selection = {"filter": {"countries": ["KW"]}}
    action = {"setStatus": "INACTIVE"}
    shown = (await preview(api, selection, action))["preview"]
    assert (shown["total"], shown["willChange"]) == (3, 3)
    # another client joins the selection before the operator confirms
    await factory.client(login="kw.late", country="KW")
    await session.commit()
    refused = await run(api, selection, action, shown["fingerprint"])
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["fingerprint"], "SELECTION_CHANGED")
    ]
    assert refused["changedIds"] == []
    statuses = set(await session.scalars(select(Client.status).where(Client.country == "KW")))
    assert statuses == {ClientStatus.ACTIVE}
    # previewed again, it runs; running it once more changes nothing more
    again = (await preview(api, selection, action))["preview"]
    assert again["total"] == 4
    done = await run(api, selection, action, again["fingerprint"])
    assert len(done["changedIds"]) == 4
    twice = (await preview(api, selection, action))["preview"]
    assert (twice["willChange"], twice["unchanged"]) == (0, 4)


async def test_a_managers_bulk_skips_the_clients_they_may_not_change(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    mia = await factory.staff(role=StaffRole.MANAGER)
    bob = await factory.staff(role=StaffRole.MANAGER)
    mine = await factory.client(login="mine", manager_id=mia.id)
    sub = await factory.client(login="mine.sub", manager_id=bob.id, parent_id=mine.id)
    theirs = await factory.client(login="theirs", manager_id=bob.id)
    api.token = await factory.token(mia)
    selection = {"ids": [gid("Client", c.id) for c in (mine, sub, theirs)]}
    action = {"block": {"reason": "unpaid invoices"}}
    shown = (await preview(api, selection, action))["preview"]
    assert (shown["willChange"], shown["refused"]) == (2, 1)
    assert shown["refusals"][0]["code"] == "NOT_ALLOWED"
    done = await run(api, selection, action, shown["fingerprint"])
    assert sorted(done["changedIds"]) == sorted([gid("Client", mine.id), gid("Client", sub.id)])
    assert [(r["clientId"], r["code"]) for r in done["refusals"]] == [
        (gid("Client", theirs.id), "NOT_ALLOWED")
    ]
    reasons = dict((await session.execute(select(Client.login, Client.block_reason))).all())
    assert reasons == {"mine": "unpaid invoices", "mine.sub": "unpaid invoices", "theirs": None}
    # assigning clients to staff is staff administration, as in clientUpdate
    to_bob = {"assignManager": {"managerId": gid("StaffUser", bob.id)}}
    errors = await api.errors(PREVIEW, {"selection": selection, "action": to_bob})
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert errors[0]["extensions"]["scope"] == "staff:admin"


async def test_a_parent_whose_refused_sub_account_stays_is_refused_too(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    parent = await factory.client(login="papa")
    sub = await factory.client(
        login="papa.sub", parent_id=parent.id, balance=Decimal("5"), credit_limit=Decimal(0)
    )
    await session.commit()
    selection = {"ids": [gid("Client", parent.id), gid("Client", sub.id)]}
    shown = (await preview(api, selection, {"delete": True}))["preview"]
    assert (shown["willChange"], shown["refused"]) == (0, 2)
    done = await run(api, selection, {"delete": True}, shown["fingerprint"])
    assert done["changedIds"] == []
    assert {(r["clientId"], r["code"]) for r in done["refusals"]} == {
        (gid("Client", parent.id), "HAS_SUB_ACCOUNTS"),
        (gid("Client", sub.id), "HAS_BALANCE"),
    }
    assert set(await session.scalars(select(Client.login))) >= {"papa", "papa.sub"}


@pytest.mark.parametrize(
    ("selection", "action", "error"),
    [
        ({}, {"unblock": True}, (["selection"], "REQUIRED")),
        ({"ids": [], "search": "a"}, {"unblock": True}, (["selection"], "REQUIRED")),
        ({"search": "a"}, {}, (["action"], "REQUIRED")),
        ({"search": "a"}, {"unblock": True, "delete": True}, (["action"], "REQUIRED")),
        ({"search": "a"}, {"block": {"reason": " "}}, (["action", "block", "reason"], "REQUIRED")),
    ],
)
async def test_bad_requests_change_nothing(
    api: GraphQLClient,
    factory: Factory,
    selection: dict[str, Any],
    action: dict[str, Any],
    error: tuple[list[str], str],
) -> None:
    api.token = await factory.admin_token()
    await factory.client(login="anna")
    payload = await preview(api, selection, action)
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [error]
    assert payload["preview"] is None


async def test_deleting_in_bulk_needs_the_delete_scope(
    api: GraphQLClient, factory: Factory
) -> None:
    admin = await factory.staff(role=StaffRole.ADMIN)
    api.token = await factory.token(admin, scopes={Scope.CLIENTS_READ, Scope.CLIENTS_WRITE})
    client = await factory.client()
    errors = await api.errors(
        PREVIEW, {"selection": {"ids": [gid("Client", client.id)]}, "action": {"delete": True}}
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("selection", "path"),
    [
        ({"filter": {"balanceAbove": "NaN"}}, ["selection", "filter", "balanceAbove"]),
        ({"filter": {"countries": ["ZZ"]}}, ["selection", "filter", "countries", "0"]),
        ({"filter": {"statuses": ["NOPE"]}}, ["selection", "filter", "statuses", "0"]),
    ],
)
async def test_a_filter_that_cannot_match_is_a_user_error_under_selection(
    api: GraphQLClient, factory: Factory, selection: dict[str, Any], path: list[str]
) -> None:
    api.token = await factory.admin_token()
    payload = await preview(api, selection, {"unblock": True})
    assert payload["preview"] is None
    assert [e["field"] for e in payload["userErrors"]] == [path]
    done = await run(api, selection, {"unblock": True}, "x")
    assert [e["field"] for e in done["userErrors"]] == [path]
