"""Bulk jobs: a bulk action on more clients than one request changes (services/bulk.py
starts them), worked through by the job workers (services/jobs.py) a chunk at a time.

Each chunk is one transaction: it locks the job's row (so the chunks of a job run one after
another, whichever worker runs them), takes the next pending clients (sub-accounts first, by
id), locks them, judges each by the single action's rules as they are now, applies the action
to those it may change (audited per client), and marks those items done with what happened.
A worker killed mid-chunk rolls its chunk back whole: the next worker takes the same clients
again, so none is done twice and none is skipped. Cancelling takes the job's row too: once it
returns, no chunk starts and none is in flight.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.enums import BulkItemState, BulkJobStatus
from db.models import BulkJob, BulkJobItem, StaffUser
from db.session import begin_write, transaction, write_turn
from services import audit, bulk
from services.actors import Actor
from services.clock import Clock
from services.errors import DomainError, ErrorCode
from services.locks import lock_clients

CHUNK = 500
FINAL = (BulkJobStatus.FINISHED, BulkJobStatus.CANCELLED, BulkJobStatus.FAILED)


async def work(
    sessions: async_sessionmaker[AsyncSession],
    job_id: int,
    *,
    now: Clock,
    chunk: int = CHUNK,
) -> None:
    """Work through the job until it is finished, cancelled or failed."""
    while await work_chunk(sessions, job_id, now=now(), size=chunk):
        pass


async def work_chunk(
    sessions: async_sessionmaker[AsyncSession], job_id: int, *, now: datetime, size: int = CHUNK
) -> bool:
    """One chunk of the job, in one transaction; whether there may be more to do."""
    async with sessions() as session, write_turn(session), transaction(session):
        await begin_write(session)  # SQLite: the write lock, before the job is read
        job = await session.scalar(
            select(BulkJob)
            .where(BulkJob.id == job_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if job is None or job.status in FINAL:
            return False
        staff = await session.get(StaffUser, job.created_by_id) if job.created_by_id else None
        if staff is None or not staff.is_active:
            job.status = BulkJobStatus.FAILED
            job.failure = "The staff user who started it is no longer active"
            job.finished_at = now
            return False
        actor = Actor(staff.id, staff.email, staff.role, now, job.request_id)
        if job.status is BulkJobStatus.QUEUED:
            job.status = BulkJobStatus.RUNNING
            job.started_at = now
        wanted = list(
            await session.scalars(
                select(BulkJobItem.client_id)
                .where(BulkJobItem.job_id == job_id, BulkJobItem.state == BulkItemState.PENDING)
                .order_by(BulkJobItem.rank, BulkJobItem.client_id)
                .limit(size)
            )
        )
        if not wanted:
            job.status = BulkJobStatus.FINISHED
            job.finished_at = now
            return False
        action = bulk.Action.of_key(job.action)
        found = await lock_clients(session, wanted)
        clients = [found[pk] for pk in wanted if pk in found]
        verdicts = await bulk._judge(session, actor, action, wanted, clients)
        await bulk.apply(session, actor, action, found, verdicts)
        await _mark(session, job_id, verdicts)
        job.changed += sum(1 for v in verdicts if v.code is None and not v.unchanged)
        job.unchanged += sum(1 for v in verdicts if v.code is None and v.unchanged)
        job.refused += sum(1 for v in verdicts if v.code is not None)
        return True


async def _mark(session: AsyncSession, job_id: int, verdicts: Sequence[bulk.Verdict]) -> None:
    """The items of a chunk, marked with what was done (in the chunk's transaction)."""
    items = cast(Table, BulkJobItem.__table__)
    for state, chosen in (
        (BulkItemState.CHANGED, [v for v in verdicts if v.code is None and not v.unchanged]),
        (BulkItemState.UNCHANGED, [v for v in verdicts if v.code is None and v.unchanged]),
    ):
        if chosen:
            await session.execute(
                update(items)
                .where(
                    items.c.job_id == job_id,
                    items.c.client_id.in_([v.client_id for v in chosen]),
                )
                .values(state=state)
            )
    refused = [v for v in verdicts if v.code is not None]
    if refused:
        await session.execute(
            update(items)
            .where(items.c.job_id == job_id, items.c.client_id == bindparam("pk"))
            .values(state=BulkItemState.REFUSED, code=bindparam("code"), message=bindparam("text")),
            [
                {"pk": v.client_id, "code": v.code.value if v.code else None, "text": v.message}
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


async def unfinished(session: AsyncSession) -> list[int]:
    """The jobs queued or running (a worker starting takes them up again)."""
    rows = await session.scalars(
        select(BulkJob.id)
        .where(BulkJob.status.in_([BulkJobStatus.QUEUED, BulkJobStatus.RUNNING]))
        .order_by(BulkJob.id)
    )
    return list(rows)
