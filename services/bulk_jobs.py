"""Bulk jobs: a bulk action on more clients than one request changes (services/bulk.py
starts them), worked through by the job workers (services/jobs.py) a chunk at a time.

Each chunk is one transaction: it takes the next pending clients (sub-accounts first, by id)
that no other chunk holds (their items locked, SKIP LOCKED: several workers work one job at
once), locks them, judges each by the single action's rules as they are now, applies the
action to those it may change (audited per client), marks those items done with what
happened, and adds to the job's counts — only while the job still runs: a chunk that finds it
cancelled by then rolls back whole. A deletion goes one chunk at a time (the job's row
locked), so a parent's selected sub-accounts are gone before it is judged. A worker killed
mid-chunk rolls its chunk back whole: the next worker takes the same clients again, so none is
done twice and none is skipped.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.enums import BulkItemState, BulkJobStatus
from db.models import BulkJob, BulkJobItem, StaffUser
from db.session import begin_write, transaction, write_turn
from services import audit, bulk
from services.actors import Actor
from services.clock import Clock
from services.errors import DomainError, ErrorCode, ValidationFailed
from services.locks import lock_clients

CHUNK = 500
FINAL = (BulkJobStatus.FINISHED, BulkJobStatus.CANCELLED, BulkJobStatus.FAILED)


async def work(
    sessions: async_sessionmaker[AsyncSession],
    job_id: int,
    *,
    now: Clock,
    chunk: int = CHUNK,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Work through the job until it is finished, cancelled or failed, another worker holds
    it, or `stopping` says so (the worker is shutting down: the job stays RUNNING and is
    taken up again, from the chunk after the last one committed)."""
    while not stopping() and await work_chunk(sessions, job_id, now=now(), size=chunk):
        pass


async def work_chunk(
    sessions: async_sessionmaker[AsyncSession], job_id: int, *, now: datetime, size: int = CHUNK
) -> bool:
    """One chunk of the job, in one transaction; whether there may be more to do (False too
    when the pending clients left are all in other workers' chunks: they finish the job)."""
    async with sessions() as session, write_turn(session), transaction(session):
        await begin_write(session)  # SQLite: the write lock, before the job is read
        job = await session.scalar(
            select(BulkJob).where(BulkJob.id == job_id).execution_options(populate_existing=True)
        )
        if job is None or job.status in FINAL:
            return False
        if job.action.get("kind") == "delete":
            # one chunk at a time, in order: a parent's selected sub-accounts go first
            await session.execute(select(BulkJob.id).where(BulkJob.id == job_id).with_for_update())
        staff = await session.get(StaffUser, job.created_by_id) if job.created_by_id else None
        if staff is None or not staff.is_active:
            await _end(session, job_id, BulkJobStatus.FAILED, now, INACTIVE_STARTER)
            return False
        actor = Actor(staff.id, staff.email, staff.role, now, job.request_id)
        try:  # the action as it may be done now: its end in the future, its manager active,
            # the starter's role still allowing it
            action = await bulk.check_action(session, actor, bulk.Action.of_key(job.action))
        except (DomainError, ValidationFailed) as error:
            why = error.message if isinstance(error, DomainError) else str(error)
            await _end(
                session, job_id, BulkJobStatus.FAILED, now, f"It can no longer be done: {why}"
            )
            return False
        pending = (
            await session.execute(
                select(BulkJobItem.rank, BulkJobItem.client_id)
                .where(BulkJobItem.job_id == job_id, BulkJobItem.state == BulkItemState.PENDING)
                .order_by(BulkJobItem.rank, BulkJobItem.client_id)
                .limit(size)
                .with_for_update(skip_locked=True)  # (another worker's chunk holds its own)
            )
        ).all()
        if not pending:
            left = await session.scalar(
                select(BulkJobItem.client_id)
                .where(BulkJobItem.job_id == job_id, BulkJobItem.state == BulkItemState.PENDING)
                .limit(1)
            )
            if left is None:
                await _end(session, job_id, BulkJobStatus.FINISHED, now)
            return False
        wanted = [client_id for _, client_id in pending]
        found = await lock_clients(session, wanted)
        clients = [found[pk] for pk in wanted if pk in found]
        verdicts = await bulk._judge(session, actor, action, wanted, clients)
        await bulk.apply(session, actor, action, found, verdicts)
        await _mark(session, job_id, {pk: rank for rank, pk in pending}, verdicts)
        # the counts, and the check that the job still runs: a cancel committed meanwhile
        # (it waits for no chunk but the one holding this row) leaves this chunk undone
        counted = await session.execute(
            update(BulkJob)
            .where(BulkJob.id == job_id, BulkJob.status.in_(RUNNABLE))
            .values(
                status=BulkJobStatus.RUNNING,
                started_at=func.coalesce(BulkJob.started_at, now),
                changed=BulkJob.changed
                + sum(1 for v in verdicts if v.code is None and not v.unchanged),
                unchanged=BulkJob.unchanged
                + sum(1 for v in verdicts if v.code is None and v.unchanged),
                refused=BulkJob.refused + sum(1 for v in verdicts if v.code is not None),
            )
            .returning(BulkJob.id)
            .execution_options(synchronize_session=False)
        )
        if counted.first() is None:
            await session.rollback()
            return False
        return True


INACTIVE_STARTER = "The staff user who started it is no longer active"
RUNNABLE = (BulkJobStatus.QUEUED, BulkJobStatus.RUNNING)


async def _end(
    session: AsyncSession,
    job_id: int,
    status: BulkJobStatus,
    now: datetime,
    why: str | None = None,
) -> None:
    """The job FINISHED or FAILED (`why`), unless it has ended already."""
    await session.execute(
        update(BulkJob)
        .where(BulkJob.id == job_id, BulkJob.status.in_(RUNNABLE))
        .values(
            status=status,
            finished_at=now,
            started_at=func.coalesce(BulkJob.started_at, now),
            failure=why[:500] if why else None,
        )
        .execution_options(synchronize_session=False)
    )


async def fail(
    sessions: async_sessionmaker[AsyncSession], job_id: int, *, now: datetime, why: str
) -> None:
    """Mark the job FAILED (its worker gave up on it), unless it has ended already."""
    async with sessions() as session, write_turn(session), transaction(session):
        await begin_write(session)
        await _end(session, job_id, BulkJobStatus.FAILED, now, why)


async def _mark(
    session: AsyncSession,
    job_id: int,
    ranks: dict[int, int],
    verdicts: Sequence[bulk.Verdict],
) -> None:
    """The items of a chunk, marked with what was done (in the chunk's transaction), each
    found by its whole key (job, rank, client)."""
    items = cast(Table, BulkJobItem.__table__)
    for state, chosen in (
        (BulkItemState.CHANGED, [v for v in verdicts if v.code is None and not v.unchanged]),
        (BulkItemState.UNCHANGED, [v for v in verdicts if v.code is None and v.unchanged]),
    ):
        for rank in sorted({ranks[v.client_id] for v in chosen}):
            ids = [v.client_id for v in chosen if ranks[v.client_id] == rank]
            await session.execute(
                update(items)
                .where(
                    items.c.job_id == job_id,
                    items.c.rank == rank,
                    # the range bounds the index scan whatever the planner guesses of a
                    # table whose statistics lag a large job's insert
                    items.c.client_id.between(min(ids), max(ids)),
                    items.c.client_id.in_(ids),
                )
                .values(state=state)
            )
    refused = [v for v in verdicts if v.code is not None]
    if refused:
        await session.execute(
            update(items)
            .where(
                items.c.job_id == job_id,
                items.c.rank == bindparam("item_rank"),
                items.c.client_id == bindparam("pk"),
            )
            .values(state=BulkItemState.REFUSED, code=bindparam("code"), message=bindparam("text")),
            [
                {
                    "item_rank": ranks[v.client_id],
                    "pk": v.client_id,
                    "code": v.code.value if v.code else None,
                    "text": v.message[:500],
                }
                for v in refused
            ],
        )


@dataclass(frozen=True, slots=True)
class Visible:
    """Whether an actor may see or stop a job: the staff user who started it, and admins."""

    staff_id: int
    is_admin: bool

    def sees(self, job: BulkJob) -> bool:
        return self.is_admin or job.created_by_id == self.staff_id


async def cancel(session: AsyncSession, *, actor: Actor, job_id: int) -> BulkJob:
    """Stop the job: no chunk runs after this returns (the one in flight, if any, commits
    first: the job's row is locked by it). The clients done so far stay done."""
    async with transaction(session):
        job = await session.scalar(
            select(BulkJob)
            .where(BulkJob.id == job_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if job is None or not Visible(actor.staff_id, actor.is_admin).sees(job):
            raise DomainError(ErrorCode.NOT_FOUND, "No such job", ["id"])
        if job.status in FINAL:
            raise DomainError(
                ErrorCode.ALREADY_FINISHED, f"The job is {job.status.value.lower()}", ["id"]
            )
        before = job.status
        job.status = BulkJobStatus.CANCELLED
        job.finished_at = actor.now
        job.cancelled_by_id = actor.staff_id
        await audit.record(
            session,
            actor=actor,
            action="bulk_job.cancel",
            target_type="BulkJob",
            target_id=job.id,
            target_label=str(job.action.get("kind")),
            before={"status": before},
            after={"status": job.status},
        )
        return job


async def unfinished(session: AsyncSession) -> list[tuple[int, str]]:
    """The jobs queued or running, and their actions (a worker starting takes them up)."""
    rows = await session.execute(
        select(BulkJob.id, BulkJob.action).where(BulkJob.status.in_(RUNNABLE)).order_by(BulkJob.id)
    )
    return [(job_id, str(action.get("kind"))) for job_id, action in rows]
