"""Client versions (optimistic concurrency: `expectedVersion`, STALE_VERSION) and the
incremental sync (`clientChanges`): every change committed after a stored cursor comes after
it, none is skipped while writers run at the same time, deletions come as tombstones."""

import asyncio
import base64
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from clientdesk.settings import Settings
from db.migrate import upgrade
from db.models import Client
from db.models import ClientChange as ClientChangeModel
from db.queries import settled_position
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from tests.api import GraphQLClient
from tests.conftest import POSTGRES_URL, FakeClock, ScratchDatabases
from tests.factories import Factory

needs_postgresql = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs PostgreSQL (TEST_DATABASE_URL)"
)


def gid(pk: int) -> str:
    return base64.b64encode(f"Client:{pk}".encode()).decode()


VERSION = "query($id: ID!) { node(id: $id) { ... on Client { version name blocked } } }"
PAYLOAD = "client { version name blocked parent { login } priceAdjustmentPercent } "
PAYLOAD += "userErrors { field code message }"
UPDATE = f"""mutation($id: ID!, $v: Int, $name: String) {{
  clientUpdate(id: $id, input: {{name: $name}}, expectedVersion: $v) {{ {PAYLOAD} }} }}"""
BLOCK = f"""mutation($id: ID!, $v: Int) {{
  clientBlock(id: $id, reason: "unpaid", expectedVersion: $v) {{ {PAYLOAD} }} }}"""
UNBLOCK = f"""mutation($id: ID!, $v: Int) {{
  clientUnblock(id: $id, expectedVersion: $v) {{ {PAYLOAD} }} }}"""
PRICE = f"""mutation($id: ID!, $v: Int) {{
  clientPriceAdjustmentSet(id: $id, percent: "7.50", expectedVersion: $v) {{ {PAYLOAD} }} }}"""
LINK = """mutation($parent: ID!, $id: ID!, $v: Int) {
  clientLink(parentId: $parent, childId: $id, expectedVersion: $v) {
    child { version parent { login } } userErrors { field code message } } }"""
UNLINK = """mutation($id: ID!, $v: Int) {
  clientUnlink(childId: $id, expectedVersion: $v) {
    child { version parent { login } } userErrors { field code message } } }"""
PAY = """mutation($id: ID!) {
  creditAdd(input: {clientId: $id, amount: "5.00", paymentMethod: CASH}) {
    userErrors { code } } }"""
STATUS = """mutation($id: ID!) {
  clientsSetStatus(ids: [$id], status: INACTIVE) { userErrors { code } } }"""


@pytest.fixture
async def admin(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


async def version_of(api: GraphQLClient, pk: int) -> int:
    return int((await api(VERSION, {"id": gid(pk)}))["node"]["version"])


# A change of each kind, and what it needs set up first: every one counts as a new version.
CHANGES: list[tuple[str, str, str | None]] = [
    ("clientUpdate", UPDATE, None),
    ("clientBlock", BLOCK, None),
    ("clientUnblock", UNBLOCK, BLOCK),
    ("clientPriceAdjustmentSet", PRICE, None),
    ("clientLink", LINK, None),
    ("clientUnlink", UNLINK, LINK),
]


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(("name", "document", "before"), CHANGES, ids=[c[0] for c in CHANGES])
async def test_each_change_takes_the_version_it_was_given_and_refuses_a_stale_one(
    api: GraphQLClient, factory: Factory, name: str, document: str, before: str | None
) -> None:
    # given a client (and, for a link, its parent-to-be)
    parent = await factory.client(login="theparent")
    client = await factory.client(login="thechild", name="Before")
    variables: dict[str, Any] = {"id": gid(client.id), "parent": gid(parent.id), "name": "After"}
    if before is not None:
        set_up = await api(before, {**variables, "v": None})
        assert set_up[_setup_name(before)]["userErrors"] == []
    read = await version_of(api, client.id)
    # when someone else changes it first (a payment counts: the version counts every change)
    assert (await api(PAY, {"id": gid(client.id)}))["creditAdd"]["userErrors"] == []
    stale = (await api(document, {**variables, "v": read}))[name]
    # then the change is refused, and the payload shows the client as it is now
    assert [(e["field"], e["code"]) for e in stale["userErrors"]] == [
        (["expectedVersion"], "STALE_VERSION")
    ]
    shown = stale.get("client") or stale.get("child")
    assert shown is not None
    assert shown["version"] == read + 1
    assert f"version {read + 1}" in stale["userErrors"][0]["message"]
    assert await version_of(api, client.id) == read + 1  # nothing changed
    # and with the version it shows, the change applies and makes the next version
    done = (await api(document, {**variables, "v": read + 1}))[name]
    assert done["userErrors"] == []
    assert await version_of(api, client.id) == read + 2


def _setup_name(document: str) -> str:
    return "clientBlock" if document is BLOCK else "clientLink"


@pytest.mark.usefixtures("admin")
async def test_versions_count_every_change_and_only_changes(
    api: GraphQLClient, factory: Factory
) -> None:
    client = await factory.client(name="Same")
    cid = gid(client.id)
    assert await version_of(api, client.id) == 1
    # an update that changes nothing is no new version
    same = (await api(UPDATE, {"id": cid, "name": "Same", "v": 1}))["clientUpdate"]
    assert same["userErrors"] == []
    assert same["client"]["version"] == 1
    steps = [
        (UPDATE, {"name": "Other"}, "clientUpdate"),
        (PAY, {}, "creditAdd"),
        (STATUS, {}, "clientsSetStatus"),
        (BLOCK, {}, "clientBlock"),
        (PRICE, {}, "clientPriceAdjustmentSet"),
    ]
    for n, (document, extra, name) in enumerate(steps, start=2):
        assert (await api(document, {"id": cid, **extra}))[name]["userErrors"] == []
        assert await version_of(api, client.id) == n, name
    # leaving expectedVersion out is last write wins, as before
    late = (await api(UPDATE, {"id": cid, "name": "Late"}))["clientUpdate"]
    assert late["userErrors"] == []
    assert late["client"]["version"] == len(steps) + 2


async def test_two_operators_editing_the_same_client_one_is_told(
    api: GraphQLClient, factory: Factory
) -> None:
    # given two admins who both opened the client at version 1
    first, second = await factory.admin_token(), await factory.admin_token()
    client = await factory.client(name="Original")
    cid = gid(client.id)
    # when both save their edit with the version they read
    one = (await api(UPDATE, {"id": cid, "name": "First", "v": 1}, token=first))["clientUpdate"]
    two = (await api(UPDATE, {"id": cid, "name": "Second", "v": 1}, token=second))["clientUpdate"]
    # then the first wins, the second is told and sees the first one's name
    assert one["userErrors"] == []
    assert one["client"]["name"] == "First"
    assert [e["code"] for e in two["userErrors"]] == ["STALE_VERSION"]
    assert two["client"] == {**one["client"], "version": 2}


# --- the incremental sync -------------------------------------------------------------------

FEED = """query($after: String, $first: Int) {
  clientChanges(first: $first, after: $after) {
    nodes { clientId version deleted client { login name version } }
    pageInfo { endCursor hasNextPage } } }"""
DELETE = """mutation($ids: [ID!]!) { clientsDelete(ids: $ids, confirm: true) {
  userErrors { code } } }"""
RESTORE = """mutation($ids: [ID!]!) { clientsRestore(ids: $ids) { userErrors { code } } }"""


@dataclass
class Stack:
    engine: AsyncEngine
    api: GraphQLClient
    factory: Factory
    session: AsyncSession
    app: Any


@asynccontextmanager
async def serving(url: str, clock: FakeClock) -> AsyncIterator[Stack]:
    """The app over a database whose changes really commit (the feed reads committed ones)."""
    engine = create_engine(url, pool_size=12, max_overflow=4)
    app = create_app(
        Settings(database_url=url, rate_limit_points_per_minute=0),
        engine=engine,
        clock=clock,
    )
    async with (
        create_sessionmaker(engine)() as session,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sync.test"
        ) as http,
    ):
        factory = Factory(session, clock)
        api = GraphQLClient(http)
        api.token = await factory.admin_token()
        yield Stack(engine, api, factory, session, app)
    await engine.dispose()


@pytest.fixture
async def stack(scratch_url: str, clock: FakeClock) -> AsyncIterator[Stack]:
    async with serving(scratch_url, clock) as serving_stack:
        yield serving_stack


class Replica:
    """A partner's copy, kept by the feed: client id -> (version, login, name)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, str, str | None]] = {}
        self.cursor: str | None = None
        self.seen: set[tuple[str, int]] = set()
        self.repeats: list[tuple[str, int]] = []

    async def sync(
        self, api: GraphQLClient, *, first: int = 7, settle: AsyncEngine | None = None
    ) -> None:
        """Read the feed from the stored cursor to its end, applying changes (after every
        change made so far has settled, if `settle` is given)."""
        if settle is not None:
            await settled(settle)
        while True:
            page = (await api(FEED, {"after": self.cursor, "first": first}))["clientChanges"]
            for change in page["nodes"]:
                key = (change["clientId"], change["version"])
                if key in self.seen:
                    self.repeats.append(key)
                self.seen.add(key)
                held = self.rows.get(change["clientId"])
                if change["deleted"]:
                    self.rows.pop(change["clientId"], None)
                    continue
                now = change["client"]
                if now is not None and (held is None or now["version"] > held[0]):
                    self.rows[change["clientId"]] = (now["version"], now["login"], now["name"])
            if page["pageInfo"]["endCursor"] is not None:
                self.cursor = page["pageInfo"]["endCursor"]
            if not page["pageInfo"]["hasNextPage"]:
                return


async def settled(engine: AsyncEngine) -> None:
    """Wait until every change made so far is below the feed's horizon (a transaction of the
    database that is still writing holds it back; for at most 30 seconds here)."""
    if engine.dialect.name != "postgresql":
        return
    deadline = asyncio.get_running_loop().time() + 30
    async with engine.connect() as connection:
        while asyncio.get_running_loop().time() < deadline:
            newest = select(func.max(ClientChangeModel.position)).scalar_subquery()
            behind = await connection.scalar(select(settled_position() <= newest))
            await connection.rollback()
            if not behind:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("a transaction held the feed back for 30 s")


async def truth(engine: AsyncEngine) -> dict[str, tuple[int, str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Client.id, Client.__table__.c.version, Client.login, Client.name)
        )
        return {gid(row.id): (row.version, row.login, row.name) for row in rows}


async def test_the_feed_gives_each_client_at_its_latest_change_then_only_what_changed(
    stack: Stack,
) -> None:
    api, factory = stack.api, stack.factory
    # given clients, some changed, one deleted
    clients = [await factory.client(login=f"feed{n}") for n in range(12)]
    await api(UPDATE, {"id": gid(clients[3].id), "name": "Renamed"})
    await api(DELETE, {"ids": [gid(clients[5].id)]})
    # when a partner syncs from the start
    replica = Replica()
    await replica.sync(api, settle=stack.engine)
    # then it holds every client once, as it is, and the deleted one as a tombstone
    assert replica.rows == await truth(stack.engine)
    assert replica.repeats == []
    assert (gid(clients[5].id), 2) in replica.seen  # the tombstone's version
    # when nothing changes, the stored cursor gives nothing
    stored = replica.cursor
    page = (await api(FEED, {"after": stored}))["clientChanges"]
    assert page == {"nodes": [], "pageInfo": {"endCursor": None, "hasNextPage": False}}
    # when a client changes, is restored, is made: only those come after the cursor
    await api(UPDATE, {"id": gid(clients[0].id), "name": "Later"})
    await api(RESTORE, {"ids": [gid(clients[5].id)]})
    new = await factory.client(login="feednew")
    await settled(stack.engine)
    page = (await api(FEED, {"after": stored}))["clientChanges"]
    assert [(n["clientId"], n["version"], n["deleted"]) for n in page["nodes"]] == [
        (gid(clients[0].id), 2, False),
        (gid(clients[5].id), 3, False),  # restored: above its tombstone's version
        (gid(new.id), 1, False),
    ]
    await replica.sync(api, settle=stack.engine)
    assert replica.rows == await truth(stack.engine)
    assert replica.repeats == []


async def test_a_bad_cursor_is_refused(stack: Stack) -> None:
    errors = await stack.api.errors(FEED, {"after": "not-a-cursor"})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.fixture
async def postgres_databases(tmp_path: Path) -> AsyncIterator[ScratchDatabases]:
    """PostgreSQL databases a test may commit to, whatever backend the run is on."""
    databases = ScratchDatabases("postgresql", tmp_path)
    yield databases
    await databases.drop_all()


@pytest.fixture
async def postgres_stack(
    postgres_databases: ScratchDatabases, clock: FakeClock
) -> AsyncIterator[Stack]:
    async with serving(await postgres_databases.create(), clock) as stack:
        yield stack


@needs_postgresql  # SQLite's writers take turns: no change is in flight while another commits
async def test_a_change_in_flight_holds_the_feed_back_until_it_commits(
    postgres_stack: Stack,
) -> None:
    stack = postgres_stack
    api, factory = stack.api, stack.factory
    early, late = await factory.client(login="early"), await factory.client(login="late")
    replica = Replica()
    await replica.sync(api, settle=stack.engine)
    # given a change that began first and is still in flight, and one that began and
    # committed after it
    async with stack.engine.connect() as slow:
        await slow.execute(update(Client).where(Client.id == early.id).values(name="slow"))
        await api(UPDATE, {"id": gid(late.id), "name": "fast"})
        # when the partner syncs meanwhile
        await replica.sync(api)
        # then neither comes yet: the cursor must not pass the change in flight
        assert replica.rows[gid(late.id)][2] != "fast"
        assert replica.rows[gid(early.id)][2] != "slow"
        await slow.commit()
    # and once it commits, both come
    await replica.sync(api, settle=stack.engine)
    assert replica.rows == await truth(stack.engine)
    assert replica.rows[gid(early.id)][2] == "slow"
    assert replica.rows[gid(late.id)][2] == "fast"


@needs_postgresql
async def test_a_transaction_in_another_database_does_not_hold_the_feed_back(
    postgres_stack: Stack, postgres_databases: ScratchDatabases
) -> None:
    elsewhere = create_engine(await postgres_databases.create())
    async with elsewhere.connect() as other:
        # given a transaction writing in another database of the cluster, left open
        await other.execute(text("CREATE TABLE busy (n int)"))
        # when a client here changes
        client = await postgres_stack.factory.client(login="notheld")
        # then the feed has it at once (not when the other transaction ends)
        page = (await postgres_stack.api(FEED, {"first": 100}))["clientChanges"]["nodes"]
        assert [n["clientId"] for n in page] == [gid(client.id)]
        await other.rollback()
    await elsewhere.dispose()


@needs_postgresql
async def test_a_database_restored_into_a_younger_cluster_keeps_its_positions_growing(
    postgres_stack: Stack,
) -> None:
    stack = postgres_stack
    first = await stack.factory.client(login="beforedump")
    # given a cluster whose transaction ids run far higher than a new one's (the base
    # stands in for them here), and a partner's cursor among its positions
    async with stack.engine.begin() as connection:
        await connection.execute(text("UPDATE client_change_base SET base = 10^12"))
    await stack.api(UPDATE, {"id": gid(first.id), "name": "In the old cluster"})
    replica = Replica()
    await replica.sync(stack.api, settle=stack.engine)
    assert replica.cursor is not None
    # when the database is restored into a new cluster (pg_dump): its ids start low
    async with stack.engine.begin() as connection:
        await connection.execute(text("UPDATE client_change_base SET base = 0"))
    # when `clientdesk migrate` runs on the restored database, then a client changes
    await upgrade(stack.engine)
    await stack.api(UPDATE, {"id": gid(first.id), "name": "After the restore"})
    # then the change comes after the partner's cursor
    await replica.sync(stack.api, settle=stack.engine)
    assert replica.rows[gid(first.id)][2] == "After the restore"


WRITERS, CHANGES_EACH = 6, 25


async def test_a_sync_during_concurrent_writers_misses_nothing(stack: Stack) -> None:
    """Writers change clients in transactions that overlap and commit in any order while a
    partner syncs again and again; at the end the partner's copy is the database, and no
    change came twice."""
    api, factory = stack.api, stack.factory
    ids = [(await factory.client(login=f"busy{n}")).id for n in range(300)]
    rng = random.Random(20)
    replica = Replica()

    # SQLite's writers take turns (as the server's do: db.session.write_turn)
    turns: AbstractAsyncContextManager[Any] = (
        asyncio.Lock() if stack.engine.dialect.name == "sqlite" else nullcontext()
    )

    async def writer(n: int) -> None:
        for step in range(CHANGES_EACH):
            async with turns, stack.engine.connect() as connection:
                for pk in sorted(rng.sample(ids, 2)):  # in id order: no deadlock
                    await connection.execute(
                        update(Client).where(Client.id == pk).values(name=f"w{n}s{step}")
                    )
                for _ in range(rng.randrange(30)):  # let others run while this one is open
                    await asyncio.sleep(0)
                await connection.commit()

    async def partner(writing: asyncio.Task[Any]) -> None:
        while not writing.done():  # again and again, as long as the writers write
            await replica.sync(api, first=5)
            synced[0] += 1

    await replica.sync(api, first=100, settle=stack.engine)  # the partner's first, whole sync
    synced = [0]
    writing = asyncio.ensure_future(asyncio.gather(*(writer(n) for n in range(WRITERS))))
    await partner(writing)
    await writing
    assert synced[0] >= 10  # the partner read many times while they wrote
    await replica.sync(api, settle=stack.engine)
    assert replica.rows == await truth(stack.engine)
    assert replica.repeats == []


async def test_versions_are_kept_by_the_database_for_any_write(stack: Stack) -> None:
    """A write that no service made (a migration, an operator's SQL) counts as well."""
    client = await stack.factory.client(login="bysql")
    async with stack.engine.begin() as connection:
        await connection.execute(
            text("UPDATE clients SET name = 'by hand' WHERE id = :id"), {"id": client.id}
        )
    assert (await truth(stack.engine))[gid(client.id)] == (2, "bysql", "by hand")
    await settled(stack.engine)
    page = (await stack.api(FEED, {"first": 100}))["clientChanges"]["nodes"]
    assert [n["version"] for n in page if n["clientId"] == gid(client.id)] == [2]
