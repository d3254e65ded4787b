"""Bulk jobs: a selection above the synchronous limit runs as a job on the queue, worked
through in chunks; followed with `bulkJob`, cancelled with `bulkJobCancel`, idempotent by
key; the preview equals what the job then does.

The limit is lowered to a few clients here (`bulk.SYNC_LIMIT`) and the chunk to two, so a
job of a handful of clients crosses several chunks; the queue is procrastinate's in-memory
one, drained in-process (the worker processes on PostgreSQL: tests/test_jobs_process.py)."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientdesk.settings import Settings
from db.enums import BulkItemState, ClientStatus, StaffRole
from db.models import AuditEntry, BulkJob, BulkJobItem, Client
from services import bulk, bulk_jobs
from tests.api import GraphQLClient
from tests.conftest import FakeClock
from tests.factories import Factory
from tests.gql.test_client_bulk import PREVIEW
from tests.gql.test_client_mutations import gid

RUN = """
mutation($selection: ClientSelection!, $action: ClientBulkAction!, $fingerprint: String!,
         $key: String) {
  clientsBulkRun(selection: $selection, action: $action, fingerprint: $fingerprint,
                 idempotencyKey: $key) {
    job { id status total done }
    changedIds refusals { clientId code }
    userErrors { field code message }
  }
}
"""
JOB = """
query($id: ID!, $after: String) {
  bulkJob(id: $id) {
    id action status total done changed unchanged refused startedAt finishedAt failure
    createdBy { email }
    refusals(first: 2, after: $after) {
      edges { node { clientId code message } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
CANCEL = """
mutation($id: ID!) {
  bulkJobCancel(id: $id) { job { status finishedAt done } userErrors { field code } }
}
"""
LIMIT = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"bulk_job_chunk": 2})


@pytest.fixture(autouse=True)
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "SYNC_LIMIT", LIMIT)


async def preview(api: GraphQLClient, selection: dict[str, Any], action: dict[str, Any]) -> Any:
    payload = await api(PREVIEW, {"selection": selection, "action": action})
    return payload["clientsBulkPreview"]


async def start(
    api: GraphQLClient,
    selection: dict[str, Any],
    action: dict[str, Any],
    fingerprint: str,
    key: str | None = None,
) -> Any:
    variables = {"selection": selection, "action": action, "fingerprint": fingerprint, "key": key}
    return (await api(RUN, variables))["clientsBulkRun"]


async def drain(app: Any) -> None:
    await app.state.jobs.drain()


async def job_view(api: GraphQLClient, job_id: str, after: str | None = None) -> Any:
    return (await api(JOB, {"id": job_id, "after": after}))["bulkJob"]


async def test_a_large_selection_runs_as_a_job_that_does_what_the_preview_said(
    api: GraphQLClient, app: Any, factory: Factory, session: AsyncSession
) -> None:
    admin = await factory.staff(role=StaffRole.ADMIN)
    api.token = await factory.token(admin)
    plain = [await factory.client(login=f"plain{n}") for n in range(4)]
    rich = await factory.client(login="rich", balance=Decimal("3"), credit_limit=Decimal(0))
    parent = await factory.client(login="parent")
    staying = await factory.client(login="staying", parent_id=parent.id)
    leaving_parent = await factory.client(login="leaver")
    leaving_sub = await factory.client(login="leaver.sub", parent_id=leaving_parent.id)
    await session.commit()
    chosen = [*plain, rich, parent, leaving_parent, leaving_sub]
    selection = {"ids": [gid("Client", c.id) for c in chosen]}
    shown = (await preview(api, selection, {"delete": True}))["preview"]
    assert shown["total"] == 8
    assert shown["refused"] == 2
    assert shown["willChange"] == 6
    started = await start(api, selection, {"delete": True}, shown["fingerprint"])
    assert started["userErrors"] == []
    assert started["changedIds"] == []
    job = started["job"]
    assert (job["status"], job["total"], job["done"]) == ("QUEUED", 8, 0)
    await drain(app)
    seen = await job_view(api, job["id"])
    # the job did what the preview said: 6 deleted (a parent after its selected
    # sub-account, in a later chunk), 2 refused
    assert (seen["status"], seen["done"], seen["changed"], seen["refused"]) == (
        "FINISHED",
        8,
        shown["willChange"],
        shown["refused"],
    )
    assert seen["action"] == "delete"
    assert seen["createdBy"]["email"] == admin.email
    assert seen["startedAt"] is not None
    assert seen["finishedAt"] is not None
    left = set(await session.scalars(select(Client.login)))
    assert left == {"rich", "parent", "staying"}
    assert staying.login in left
    codes = {edge["node"]["code"] for edge in seen["refusals"]["edges"]}
    assert codes == {"HAS_BALANCE", "HAS_SUB_ACCOUNTS"}
    # each client audited once, as the single action
    audited = Counter(
        await session.scalars(
            select(AuditEntry.target_id).where(AuditEntry.action == "client.delete")
        )
    )
    assert audited == Counter({c.id: 1 for c in [*plain, leaving_parent, leaving_sub]})


async def test_refusals_page_by_cursor(
    api: GraphQLClient, app: Any, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    rich = [
        await factory.client(login=f"rich{n}", balance=Decimal("1"), credit_limit=Decimal(0))
        for n in range(5)
    ]
    await session.commit()
    selection = {"ids": [gid("Client", c.id) for c in rich]}
    shown = (await preview(api, selection, {"delete": True}))["preview"]
    job = (await start(api, selection, {"delete": True}, shown["fingerprint"]))["job"]
    await drain(app)
    found: list[str] = []
    after = None
    while True:
        page = (await job_view(api, job["id"], after))["refusals"]
        found += [edge["node"]["clientId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert found == [gid("Client", c.id) for c in sorted(rich, key=lambda c: c.id)]


async def test_a_filtered_selection_runs_as_a_job(
    api: GraphQLClient, app: Any, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    inactive = [await factory.client(status=ClientStatus.INACTIVE) for _ in range(5)]
    active = await factory.client()
    await session.commit()
    selection = {"filter": {"statuses": ["INACTIVE"]}}
    action = {"setStatus": "ACTIVE"}
    shown = (await preview(api, selection, action))["preview"]
    assert shown["total"] == 5
    job = (await start(api, selection, action, shown["fingerprint"]))["job"]
    await drain(app)
    seen = await job_view(api, job["id"])
    assert (seen["status"], seen["changed"]) == ("FINISHED", 5)
    statuses = {
        pk: status for pk, status in await session.execute(select(Client.id, Client.status))
    }
    assert all(statuses[c.id] is ClientStatus.ACTIVE for c in inactive)
    assert statuses[active.id] is ClientStatus.ACTIVE


async def test_a_changed_selection_starts_no_job(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    for _ in range(5):
        await factory.client(status=ClientStatus.INACTIVE)
    await session.commit()
    selection = {"filter": {"statuses": ["INACTIVE"]}}
    shown = (await preview(api, selection, {"setStatus": "ACTIVE"}))["preview"]
    await factory.client(status=ClientStatus.INACTIVE)
    await session.commit()
    refused = await start(api, selection, {"setStatus": "ACTIVE"}, shown["fingerprint"])
    assert [e["code"] for e in refused["userErrors"]] == ["SELECTION_CHANGED"]
    assert refused["job"] is None
    assert await session.scalar(select(func.count()).select_from(BulkJob)) == 0


async def test_cancel_stops_the_job_and_keeps_what_was_done(
    api: GraphQLClient,
    app: Any,
    factory: Factory,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    api.token = await factory.admin_token()
    clients = [await factory.client(status=ClientStatus.INACTIVE) for _ in range(6)]
    await session.commit()
    selection = {"ids": [gid("Client", c.id) for c in clients]}
    shown = (await preview(api, selection, {"setStatus": "ACTIVE"}))["preview"]
    job = (await start(api, selection, {"setStatus": "ACTIVE"}, shown["fingerprint"]))["job"]
    job_pk = int(await session.scalar(select(func.max(BulkJob.id))) or 0)
    # one chunk (two clients) done, then cancelled
    assert await bulk_jobs.work_chunk(sessionmaker, job_pk, now=clock(), size=2)
    cancelled = (await api(CANCEL, {"id": job["id"]}))["bulkJobCancel"]
    assert cancelled["userErrors"] == []
    assert cancelled["job"]["status"] == "CANCELLED"
    assert cancelled["job"]["done"] == 2
    await drain(app)  # the job queued runs, and stops at once
    seen = await job_view(api, job["id"])
    assert (seen["status"], seen["changed"]) == ("CANCELLED", 2)
    statuses = Counter(await session.scalars(select(Client.status)))
    assert statuses == Counter({ClientStatus.ACTIVE: 2, ClientStatus.INACTIVE: 4})
    pending = await session.scalar(
        select(func.count()).where(
            BulkJobItem.job_id == job_pk, BulkJobItem.state == BulkItemState.PENDING
        )
    )
    assert pending == 4
    again = (await api(CANCEL, {"id": job["id"]}))["bulkJobCancel"]
    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_FINISHED"]


async def test_a_retry_with_the_idempotency_key_answers_with_the_same_job(
    api: GraphQLClient, app: Any, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    clients = [await factory.client(status=ClientStatus.INACTIVE) for _ in range(5)]
    await session.commit()
    selection = {"ids": [gid("Client", c.id) for c in clients]}
    action = {"setStatus": "ACTIVE"}
    shown = (await preview(api, selection, action))["preview"]
    first = await start(api, selection, action, shown["fingerprint"], key="import-7")
    await drain(app)
    # the retry comes after the job changed the clients: the same job, not a refusal
    again = await start(api, selection, action, shown["fingerprint"], key="import-7")
    assert again["userErrors"] == []
    assert again["job"]["id"] == first["job"]["id"]
    assert again["job"]["status"] == "FINISHED"
    assert await session.scalar(select(func.count()).select_from(BulkJob)) == 1
    other = await start(api, selection, {"setStatus": "INACTIVE"}, "x" * 32, key="import-7")
    assert [(e["field"], e["code"]) for e in other["userErrors"]] == [
        (["idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")
    ]


async def test_a_job_is_seen_and_cancelled_only_by_who_started_it_and_admins(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    manager = await factory.staff(role=StaffRole.MANAGER)
    other = await factory.staff(role=StaffRole.MANAGER)
    clients = [await factory.client(manager_id=manager.id) for _ in range(4)]
    await session.commit()
    api.token = await factory.token(manager)
    selection = {"ids": [gid("Client", c.id) for c in clients]}
    action = {"setStatus": "INACTIVE"}
    shown = (await preview(api, selection, action))["preview"]
    job = (await start(api, selection, action, shown["fingerprint"]))["job"]
    assert (await job_view(api, job["id"]))["total"] == 4
    api.token = await factory.token(other)
    assert await job_view(api, job["id"]) is None
    refused = (await api(CANCEL, {"id": job["id"]}))["bulkJobCancel"]
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    api.token = await factory.admin_token()
    assert (await job_view(api, job["id"]))["status"] == "QUEUED"


async def test_a_manager_job_refuses_the_clients_of_others_when_their_chunk_runs(
    api: GraphQLClient, app: Any, factory: Factory, session: AsyncSession
) -> None:
    manager = await factory.staff(role=StaffRole.MANAGER)
    other = await factory.staff(role=StaffRole.MANAGER)
    mine = [await factory.client(manager_id=manager.id) for _ in range(4)]
    await session.commit()
    api.token = await factory.token(manager)
    selection = {"ids": [gid("Client", c.id) for c in mine]}
    action = {"setStatus": "INACTIVE"}
    shown = (await preview(api, selection, action))["preview"]
    assert shown["willChange"] == 4
    job = (await start(api, selection, action, shown["fingerprint"]))["job"]
    # given to another manager after the job was started: judged when its chunk runs
    given = await session.get(Client, mine[-1].id)
    assert given is not None
    given.manager_id = other.id
    await session.commit()
    await drain(app)
    seen = await job_view(api, job["id"])
    assert (seen["changed"], seen["refused"]) == (3, 1)
    assert seen["refusals"]["edges"][0]["node"]["code"] == "NOT_ALLOWED"


async def test_a_job_whose_starter_was_deactivated_fails(
    api: GraphQLClient, app: Any, factory: Factory, session: AsyncSession
) -> None:
    admin = await factory.staff(role=StaffRole.ADMIN)
    api.token = await factory.token(admin)
    clients = [await factory.client() for _ in range(4)]
    await session.commit()
    selection = {"ids": [gid("Client", c.id) for c in clients]}
    action = {"setStatus": "INACTIVE"}
    shown = (await preview(api, selection, action))["preview"]
    job = (await start(api, selection, action, shown["fingerprint"]))["job"]
    admin.is_active = False
    await session.commit()
    await drain(app)
    api.token = await factory.admin_token()
    seen = await job_view(api, job["id"])
    assert (seen["status"], seen["done"]) == ("FAILED", 0)
    assert "no longer active" in seen["failure"]
    assert set(await session.scalars(select(Client.status))) == {ClientStatus.ACTIVE}


async def test_the_preview_says_when_a_run_would_be_a_job(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    api.token = await factory.admin_token()
    clients = [await factory.client() for _ in range(LIMIT + 1)]
    await session.commit()
    query = PREVIEW.replace("fingerprint", "fingerprint runsAsJob")
    for chosen, as_job in ((clients[:LIMIT], False), (clients, True)):
        variables = {
            "selection": {"ids": [gid("Client", c.id) for c in chosen]},
            "action": {"unblock": True},
        }
        shown = (await api(query, variables))["clientsBulkPreview"]["preview"]
        assert shown["runsAsJob"] is as_job


async def test_a_block_whose_end_passed_before_its_chunk_ran_fails_the_job(
    api: GraphQLClient, app: Any, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    api.token = await factory.admin_token()
    clients = [await factory.client() for _ in range(4)]
    await session.commit()
    until = (clock() + timedelta(hours=1)).isoformat()
    selection = {"ids": [gid("Client", c.id) for c in clients]}
    action = {"block": {"reason": "Audit", "until": until}}
    shown = (await preview(api, selection, action))["preview"]
    job = (await start(api, selection, action, shown["fingerprint"]))["job"]
    clock.advance(timedelta(hours=2))  # the job waited in the queue past the block's end
    await drain(app)
    seen = await job_view(api, job["id"])
    assert (seen["status"], seen["done"]) == ("FAILED", 0)
    assert "no longer be done" in seen["failure"]
    blocked = await session.scalars(select(Client.blocked_at).where(Client.blocked_at.is_not(None)))
    assert list(blocked) == []


async def test_an_idempotency_key_is_checked(api: GraphQLClient, factory: Factory) -> None:
    api.token = await factory.admin_token()
    client = await factory.client()
    selection = {"ids": [gid("Client", client.id)]}
    for key, code in (("k" * 201, "TOO_LONG"), ("", "INVALID")):
        refused = await start(api, selection, {"unblock": True}, "x", key=key)
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
            (["idempotencyKey"], code)
        ]
