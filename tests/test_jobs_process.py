"""Bulk jobs on PostgreSQL with real `clientdesk worker` processes: a worker killed (SIGKILL)
in the middle of a chunk loses that chunk whole, and the next worker finishes the job with
every client done exactly once — none twice, none skipped.

The kill lands mid-chunk deterministically: the test holds a lock on one client, the worker's
chunk that reaches it waits for it (seen in pg_stat_activity), and the worker is killed
there, its earlier chunks committed and that one not."""

import asyncio
import os
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import BulkItemState, BulkJobStatus, ClientStatus, StaffRole
from db.models import AuditEntry, BulkJob, BulkJobItem, Client, StaffUser
from db.session import create_engine, create_sessionmaker
from services import bulk, bulk_jobs
from services.actors import Actor
from tests.conftest import POSTGRES_URL, ScratchDatabases, backends_until
from tests.gql.test_bulk_jobs import RUN
from tests.gql.test_client_bulk import PREVIEW
from tests.servers import CLEAN_EXIT, CLIENTDESK, seed_admin_and_client, start_server

needs_postgresql = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs PostgreSQL (TEST_DATABASE_URL)"
)

CLIENTS = 1_200
CHUNK = 100
HELD = 700  # the 700th client: chunks 1-6 commit, the 7th waits for it
NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def add_clients(
    session: AsyncSession, count: int, prefix: str, status: ClientStatus = ClientStatus.ACTIVE
) -> None:
    """`count` EUR clients named prefix00000, prefix00001, …, in one statement."""
    await session.execute(
        insert(Client),
        [
            {
                "login": f"{prefix}{n:05}",
                "password_hash": "x",
                "email": f"{prefix}{n}@example.com",
                "currency": "EUR",
                "balance": Decimal(0),
                "credit_limit": Decimal(0),
                "status": status,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for n in range(count)
        ],
    )


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    environment = os.environ | {
        "CLIENTDESK_DATABASE_URL": url,
        "CLIENTDESK_BULK_JOB_CHUNK": str(CHUNK),
        "CLIENTDESK_LOG_FORMAT": "json",
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [CLIENTDESK, "worker", "--concurrency", "1"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@needs_postgresql
async def test_a_worker_killed_mid_chunk_leaves_every_client_done_exactly_once(
    tmp_path: Path,
) -> None:
    scratch = ScratchDatabases("postgresql", tmp_path)
    url = await scratch.create()
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with sessions() as session:
            admin = StaffUser(email="ops@example.com", name="Ops", role=StaffRole.ADMIN)
            session.add(admin)
            await session.flush()
            await add_clients(session, CLIENTS, "client", status=ClientStatus.INACTIVE)
            ids = list(await session.scalars(select(Client.id).order_by(Client.id)))
            await session.commit()
            actor = Actor(admin.id, admin.email, admin.role, NOW)
            action = bulk.Action(kind="set_status", status=ClientStatus.ACTIVE)
            shown = await bulk.preview(session, actor=actor, action=action, ids=ids)
            assert shown.as_job
            started = await bulk.run(
                session, actor=actor, action=action, expected=shown.fingerprint, ids=ids
            )
            assert isinstance(started, bulk.JobStarted)
        job_id = started.job_id

        async with engine.connect() as holder, engine.connect() as watcher:
            await holder.execute(
                text("SELECT 1 FROM clients WHERE id = :id FOR UPDATE"), {"id": ids[HELD - 1]}
            )
            workers.append(start_worker(url, tmp_path / "worker1.log"))
            waiting = await backends_until(
                watcher,
                "application_name = 'clientdesk' AND wait_event_type = 'Lock'",
                lambda n: n >= 1,
            )
            assert waiting == 1, (tmp_path / "worker1.log").read_text()
            chunk_pid = await watcher.scalar(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'clientdesk' "
                    "AND wait_event_type = 'Lock'"
                )
            )
            await watcher.commit()
            # killed in the middle of its 7th chunk: six committed, the seventh not
            workers[0].send_signal(signal.SIGKILL)
            assert workers[0].wait() == -signal.SIGKILL
            async with sessions() as session:
                job = await session.get(BulkJob, job_id)
                assert job is not None
                assert (job.status, job.changed) == (
                    BulkJobStatus.RUNNING,
                    (HELD - 1) // CHUNK * CHUNK,
                )
            await holder.rollback()
            # the killed worker's connections end once the lock it waited for is free (its
            # chunk rolled back); a second worker finding the job's row still locked would
            # leave the job to its holder
            left = await backends_until(watcher, f"pid = {chunk_pid}", lambda n: n == 0)
            assert left == 0

        workers.append(start_worker(url, tmp_path / "worker2.log"))
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            async with sessions() as session:
                status = await session.scalar(select(BulkJob.status).where(BulkJob.id == job_id))
            if status is BulkJobStatus.FINISHED:
                break
            await asyncio.sleep(0.05)  # a worker's chunks: soon
        async with sessions() as session:
            job = await session.get(BulkJob, job_id)
            assert job is not None
            assert (job.status, job.changed, job.refused) == (BulkJobStatus.FINISHED, CLIENTS, 0)
            statuses = Counter(await session.scalars(select(Client.status)))
            assert statuses == Counter({ClientStatus.ACTIVE: CLIENTS})
            audited = Counter(
                await session.scalars(
                    select(AuditEntry.target_id).where(AuditEntry.action == "client.status_change")
                )
            )
            assert audited == Counter(dict.fromkeys(ids, 1))  # each exactly once
            states = await session.execute(
                select(BulkJobItem.state, func.count())
                .where(BulkJobItem.job_id == job_id)
                .group_by(BulkJobItem.state)
            )
            assert dict(states.all()) == {BulkItemState.CHANGED: CLIENTS}
        workers[1].send_signal(signal.SIGTERM)
        assert workers[1].wait(timeout=30) in (0, -signal.SIGTERM)
        log = (tmp_path / "worker2.log").read_text()
        assert "Traceback" not in log, log
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        await engine.dispose()
        await scratch.drop_all()


JOB_STATE = """
query($id: ID!) { bulkJob(id: $id) { status changed unchanged finishedAt } }
"""


async def test_a_server_works_its_jobs_itself_when_told_or_on_sqlite(
    backend: str, scratch_url: str
) -> None:
    """`make run` (SQLite: the queue in the server's memory) and a single machine on
    PostgreSQL (CLIENTDESK_JOBS_IN_PROCESS=true): the server process works the job."""
    seeded = await seed_admin_and_client(scratch_url)
    engine = create_engine(scratch_url)
    async with create_sessionmaker(engine)() as session:
        await add_clients(session, bulk.SYNC_LIMIT, "many")
        await session.commit()
    await engine.dispose()
    environment = {"CLIENTDESK_JOBS_IN_PROCESS": "true"} if backend == "postgresql" else {}
    server = await asyncio.to_thread(start_server, scratch_url, environment)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            headers = {"Authorization": f"Bearer {seeded.tokens[0]}"}

            async def call(query: str, variables: dict[str, Any]) -> Any:
                response = await http.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
                body = response.json()
                assert "errors" not in body, body
                return body["data"]

            action = {"setStatus": "INACTIVE"}
            shown = await call(PREVIEW, {"selection": {"filter": {}}, "action": action})
            fingerprint = shown["clientsBulkPreview"]["preview"]["fingerprint"]
            started = await call(
                RUN, {"selection": {"filter": {}}, "action": action, "fingerprint": fingerprint}
            )
            job_id = started["clientsBulkRun"]["job"]["id"]
            deadline = asyncio.get_running_loop().time() + 60
            while asyncio.get_running_loop().time() < deadline:
                job = (await call(JOB_STATE, {"id": job_id}))["bulkJob"]
                if job["finishedAt"] is not None:
                    break
                await asyncio.sleep(0.05)  # the server's worker: soon
            assert (job["status"], job["changed"]) == ("FINISHED", bulk.SYNC_LIMIT + 1)
    finally:
        status = await asyncio.to_thread(server.stop)
    assert status in CLEAN_EXIT
    assert server.failures() == []


@needs_postgresql
@pytest.mark.parametrize("action", ["set_status", "block"])
async def test_chunks_of_one_job_in_parallel_do_each_client_once(
    tmp_path: Path, action: str
) -> None:
    """Three workers' tasks on one job at once, on PostgreSQL (chunks claim their clients with
    SKIP LOCKED): every client changed and audited exactly once, the counts add up."""
    scratch = ScratchDatabases("postgresql", tmp_path)
    url = await scratch.create()
    engines = [create_engine(url) for _ in range(3)]
    try:
        async with create_sessionmaker(engines[0])() as session:
            admin = StaffUser(email="ops@example.com", name="Ops", role=StaffRole.ADMIN)
            session.add(admin)
            await session.flush()
            await add_clients(session, bulk.SYNC_LIMIT + 200, "par")
            await session.commit()
            ids = list(await session.scalars(select(Client.id).order_by(Client.id)))
            actor = Actor(admin.id, admin.email, admin.role, datetime.now(UTC))
            chosen = (
                bulk.Action(kind="set_status", status=ClientStatus.INACTIVE)
                if action == "set_status"
                else bulk.Action(kind="block", reason="Audit")
            )
            shown = await bulk.preview(session, actor=actor, action=chosen, ids=ids)
            started = await bulk.run(
                session, actor=actor, action=chosen, expected=shown.fingerprint, ids=ids
            )
            assert isinstance(started, bulk.JobStarted)
        await asyncio.gather(
            *(
                bulk_jobs.work(
                    create_sessionmaker(engine),
                    started.job_id,
                    now=lambda: datetime.now(UTC),
                    chunk=37,
                )
                for engine in engines
            )
        )
        async with create_sessionmaker(engines[0])() as session:
            job = await session.get(BulkJob, started.job_id)
            assert job is not None
            assert (job.status, job.changed, job.unchanged, job.refused) == (
                BulkJobStatus.FINISHED,
                len(ids),
                0,
                0,
            )
            audited = Counter(
                await session.scalars(
                    select(AuditEntry.target_id).where(
                        AuditEntry.action.in_(["client.status_change", "client.block"])
                    )
                )
            )
            assert audited == Counter(dict.fromkeys(ids, 1))
    finally:
        for engine in engines:
            await engine.dispose()
        await scratch.drop_all()


@needs_postgresql
async def test_a_chunk_in_flight_when_the_job_is_cancelled_changes_nothing(
    tmp_path: Path,
) -> None:
    """Cancelling returns at once, even while a chunk is in flight; that chunk, reaching its
    end, finds the job cancelled and rolls back: after `bulkJobCancel`, no client changes."""
    scratch = ScratchDatabases("postgresql", tmp_path)
    url = await scratch.create()
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session:
            admin = StaffUser(email="ops@example.com", name="Ops", role=StaffRole.ADMIN)
            session.add(admin)
            await session.flush()
            await add_clients(session, bulk.SYNC_LIMIT + 1, "can")
            await session.commit()
            ids = list(await session.scalars(select(Client.id).order_by(Client.id)))
            actor = Actor(admin.id, admin.email, admin.role, datetime.now(UTC))
            action = bulk.Action(kind="set_status", status=ClientStatus.INACTIVE)
            shown = await bulk.preview(session, actor=actor, action=action, ids=ids)
            started = await bulk.run(
                session, actor=actor, action=action, expected=shown.fingerprint, ids=ids
            )
            assert isinstance(started, bulk.JobStarted)
        async with engine.connect() as holder, engine.connect() as watcher:
            await holder.execute(
                text("SELECT 1 FROM clients WHERE id = :id FOR UPDATE"), {"id": ids[10]}
            )
            chunk = asyncio.create_task(
                bulk_jobs.work_chunk(sessions, started.job_id, now=datetime.now(UTC), size=50)
            )
            waiting = await backends_until(watcher, "wait_event_type = 'Lock'", lambda n: n >= 1)
            assert waiting == 1
            async with sessions() as session:  # answered while the chunk is in flight
                cancelled = await bulk_jobs.cancel(session, actor=actor, job_id=started.job_id)
                assert cancelled.status is BulkJobStatus.CANCELLED
            await holder.rollback()
            assert await chunk is False
        async with sessions() as session:
            job = await session.get(BulkJob, started.job_id)
            assert job is not None
            assert (job.status, job.changed) == (BulkJobStatus.CANCELLED, 0)
            statuses = Counter(await session.scalars(select(Client.status)))
            assert statuses == Counter({ClientStatus.ACTIVE: len(ids)})
            changes = await session.scalar(
                select(func.count()).where(AuditEntry.action == "client.status_change")
            )
            assert changes == 0
    finally:
        await engine.dispose()
        await scratch.drop_all()
