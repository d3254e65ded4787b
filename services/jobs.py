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
import signal
from typing import Any, cast

import procrastinate
import structlog
from procrastinate import testing
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.job_context import JobContext
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import bulk_jobs
from services.clock import Clock

log = structlog.get_logger("clientdesk.jobs")

QUEUE = "bulk"
# a chunk that fails (a lost race, a database restart) is tried again, later each time
RETRY = procrastinate.RetryStrategy(max_attempts=10, exponential_wait=2)
SHUTDOWN_GRACE_SECONDS = 60  # a chunk in flight finishes; past this, it is rolled back
RESTART_PAUSE_SECONDS = 5


# asyncpg's URL options that libpq spells otherwise, or has not
LIBPQ_OPTIONS = {"ssl": "sslmode"}
ASYNCPG_ONLY = {"prepared_statement_cache_size", "prepared_statement_name_func", "timeout"}


def libpq_url(database_url: str) -> str:
    """SQLAlchemy's URL of a PostgreSQL database as libpq (psycopg) takes it: `ssl=require`
    becomes `sslmode=require`; options of asyncpg alone are left out."""
    url = make_url(database_url)
    query = {
        LIBPQ_OPTIONS.get(key, key): value
        for key, value in url.query.items()
        if key not in ASYNCPG_ONLY
    }
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


class Jobs:
    """The queue and its tasks, bound to a database's sessions and a clock."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        database_url: str | None = None,
        chunk: int = bulk_jobs.CHUNK,
        parallel: int = 2,
    ) -> None:
        """With `database_url` (PostgreSQL), the queue is in that database; without, in this
        process's memory."""
        self.sessions = sessions
        self.clock = clock
        self.chunk = chunk
        self.parallel = parallel  # a job's chunks in flight at once (a deletion: one)
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
        self.stopping = False  # set when the worker shuts down: a job stops after its chunk

        @self.app.task(name="bulk_job", queue=QUEUE, retry=RETRY, pass_context=True)
        async def bulk_job(context: JobContext, job_id: int) -> None:
            try:
                await bulk_jobs.work(
                    self.sessions,
                    job_id,
                    now=self.clock,
                    chunk=self.chunk,
                    stopping=lambda: self.stopping,
                )
            except Exception:
                if context.job.attempts + 1 >= (RETRY.max_attempts or 1):  # the last try
                    log.exception("bulk_job_failed", job_id=job_id)
                    await bulk_jobs.fail(
                        self.sessions,
                        job_id,
                        now=self.clock(),
                        why="An error stopped it (the worker's log says which); the clients "
                        "done before stay done",
                    )
                raise

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

    async def defer_bulk_job(self, job_id: int, kind: str) -> None:
        """Queue the work of a bulk job: `parallel` tasks, each working chunks until none is
        left (a deletion: one). A task queued already is not queued again."""
        await self.open()
        for lane in range(1 if kind == "delete" else self.parallel):
            with contextlib.suppress(AlreadyEnqueued):
                await self._bulk_job.configure(
                    queueing_lock=f"bulk_job:{job_id}:{lane}"
                ).defer_async(job_id=job_id)

    async def resume(self) -> None:
        """Take up the jobs left unfinished: procrastinate's jobs whose worker stopped
        beating (killed), retried; and every bulk job queued or running, queued again (its
        chunks take the clients no other chunk holds, so extra tasks on a job do no harm)."""
        if self.in_memory:
            self._forget_memory()
        else:
            manager = self.app.job_manager
            for job in await manager.get_stalled_jobs():
                try:
                    await manager.retry_job(job)
                except Exception:  # retried by another worker meanwhile, or queued again
                    log.info("stalled_job_not_retried", job_id=job.id)
        async with self.sessions() as session:
            jobs = await bulk_jobs.unfinished(session)
        for job_id, kind in jobs:
            await self.defer_bulk_job(job_id, kind)
        if jobs:
            log.info("bulk_jobs_resumed", jobs=[job_id for job_id, _ in jobs])

    def _forget_memory(self) -> None:
        """The in-memory queue keeps every query it ran and every finished job's events (it
        is made for tests): dropped, so a long-running server does not grow."""
        connector = cast(testing.InMemoryConnector, self.app.connector)
        connector.queries.clear()
        for job_id in [key for key in connector.events if key not in connector.jobs]:
            del connector.events[job_id]

    async def run_worker(self, *, concurrency: int = 1, in_process: bool = False) -> None:
        """Work until cancelled (in-process: `stop` first) or stopped by SIGTERM or SIGINT
        (`clientdesk worker`): a running bulk job stops after its chunk, RUNNING, and is
        taken up again by the next worker to start."""
        await self.open()
        self.stopping = False
        try:
            await self.resume()
        except Exception:  # the worker runs anyway; the next minute's pass tries again
            log.exception("jobs_resume_failed")
        worker = asyncio.create_task(
            self.app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                install_signal_handlers=False,
                wait=True,
                name="clientdesk",
                delete_jobs="successful",  # (what a bulk job did stays in bulk_jobs)
                shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
            )
        )
        if not in_process:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stop, worker)
        try:
            await worker
        except asyncio.CancelledError:
            if in_process and not worker.cancelled():
                worker.cancel()
            if in_process:
                raise

    def stop(self, worker: "asyncio.Task[None] | None" = None) -> None:
        """Shut the worker down: jobs stop after their chunk in flight."""
        self.stopping = True
        if worker is not None:
            worker.cancel()

    async def drain(self) -> None:
        """Run every job queued now, and return (tests, and the embedded worker's start)."""
        await self.open()
        await self.app.run_worker_async(
            queues=[QUEUE],
            wait=False,
            install_signal_handlers=False,
            listen_notify=False,
            delete_jobs="successful",
        )


async def _supervised(jobs: Jobs) -> None:
    """The in-process worker, started again (after a pause) if it fails."""
    while True:
        try:
            await jobs.run_worker(in_process=True)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job_worker_failed")
            await asyncio.sleep(RESTART_PAUSE_SECONDS)


def background(jobs: Jobs) -> "asyncio.Task[None]":
    """The in-process worker, as a task of the running loop (`jobs.stop(task)` stops it)."""
    return asyncio.create_task(_supervised(jobs))
