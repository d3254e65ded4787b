"""The job queue: procrastinate (https://procrastinate.readthedocs.io), on PostgreSQL.

A job is deferred into procrastinate's tables and taken by a worker (`clientdesk worker`, as
many processes on as many machines as wanted), woken by LISTEN/NOTIFY. What a job does is
kept in our own tables (bulk_jobs), a chunk per transaction, so a job killed half-way is taken
up again by any worker without doing a client twice (services/bulk_jobs.py). Every minute a
worker takes up the jobs queued or running that no live worker holds: a job deferred by a
request that died before deferring it, or held by a worker killed since.

On SQLite (the embedded default of `make run`) there is no second process to talk to: the
queue is procrastinate's in-memory one, and `clientdesk serve` runs its worker in-process;
jobs left unfinished by a stopped server are taken up when it starts again.
"""

import asyncio
import contextlib
from typing import Any

import procrastinate
import structlog
from procrastinate import testing
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import bulk_jobs
from services.clock import Clock

log = structlog.get_logger("clientdesk.jobs")

QUEUE = "bulk"
# a chunk that fails (a lost race, a database restart) is tried again, later each time
RETRY = procrastinate.RetryStrategy(max_attempts=10, exponential_wait=2)


def libpq_url(database_url: str) -> str:
    """SQLAlchemy's URL of a PostgreSQL database as libpq (psycopg) takes it."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Jobs:
    """The queue and its tasks, bound to a database's sessions and a clock."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        database_url: str | None = None,
        chunk: int = bulk_jobs.CHUNK,
    ) -> None:
        """With `database_url` (PostgreSQL), the queue is in that database; without, in this
        process's memory."""
        self.sessions = sessions
        self.clock = clock
        self.chunk = chunk
        self.in_memory = database_url is None
        connector: Any = (
            testing.InMemoryConnector()
            if database_url is None
            else procrastinate.PsycopgConnector(
                conninfo=libpq_url(database_url), min_size=1, max_size=4
            )
        )
        self.app = procrastinate.App(connector=connector)
        self._opened = False

        @self.app.task(name="bulk_job", queue=QUEUE, retry=RETRY)
        async def bulk_job(job_id: int) -> None:
            await bulk_jobs.work(self.sessions, job_id, now=self.clock, chunk=self.chunk)

        @self.app.periodic(cron="* * * * *", periodic_id="resume")
        @self.app.task(name="resume", queue=QUEUE, queueing_lock="resume")
        async def resume(timestamp: int) -> None:
            await self.resume()

        self._bulk_job = bulk_job

    async def open(self) -> None:
        if not self._opened:
            await self.app.open_async()
            self._opened = True

    async def close(self) -> None:
        if self._opened:
            await self.app.close_async()
            self._opened = False

    async def defer_bulk_job(self, job_id: int) -> None:
        """Queue the work of a bulk job (once: a job queued already is not queued again)."""
        await self.open()
        with contextlib.suppress(AlreadyEnqueued):
            await self._bulk_job.configure(queueing_lock=f"bulk_job:{job_id}").defer_async(
                job_id=job_id
            )

    async def resume(self) -> None:
        """Take up the jobs left unfinished: procrastinate's jobs whose worker stopped
        beating (killed), retried; and every bulk job queued or running, queued again (its
        chunks lock its row: two workers on one job take turns, never the same clients)."""
        if not self.in_memory:
            manager = self.app.job_manager
            for job in await manager.get_stalled_jobs():
                await manager.retry_job(job)
        async with self.sessions() as session:
            ids = await bulk_jobs.unfinished(session)
        for job_id in ids:
            await self.defer_bulk_job(job_id)
        if ids:
            log.info("bulk_jobs_resumed", jobs=ids)

    async def run_worker(self, *, concurrency: int = 1, in_process: bool = False) -> None:
        """Work until cancelled (in-process) or stopped by a signal (`clientdesk worker`)."""
        await self.open()
        await self.resume()
        await self.app.run_worker_async(
            queues=[QUEUE],
            concurrency=concurrency,
            install_signal_handlers=not in_process,
            wait=True,
            name="clientdesk",
        )

    async def drain(self) -> None:
        """Run every job queued now, and return (tests, and the embedded worker's start)."""
        await self.open()
        await self.app.run_worker_async(
            queues=[QUEUE], wait=False, install_signal_handlers=False, listen_notify=False
        )


def background(jobs: Jobs) -> "asyncio.Task[None]":
    """The in-process worker, as a task of the running loop (cancel it to stop)."""
    return asyncio.create_task(jobs.run_worker(in_process=True))
