"""Bulk jobs in the API: follow one (`bulkJob`), list one's refusals, cancel it."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from db.enums import BulkItemState, BulkJobStatus, Scope
from db.keyset import Ordering, SortKey
from db.models import BulkJob as BulkJobModel
from db.models import BulkJobItem
from gql.context import Info
from gql.enums import UserErrorCode
from gql.errors import UserError, attempt
from gql.loaders import now_or_later
from gql.node import pk_of, to_global_id
from gql.pagination import AfterArg, Connection, FirstArg, page_request, paginate
from gql.permissions import HasScope
from gql.staff.types import StaffUser
from services import bulk_jobs

ITEMS = BulkJobItem.__table__
REFUSALS_ORDER = Ordering(
    keys=(SortKey(name="RANK", column=ITEMS.c.rank),), tiebreaker=ITEMS.c.client_id
)


@strawberry.type(description="A client a bulk job refused, and why.")
class BulkJobRefusal:
    client_id: strawberry.ID = strawberry.field(description="The client's global ID.")
    code: UserErrorCode = strawberry.field(description="Why.")
    message: str = strawberry.field(description="Why, for people.")


def _refusal(row: Any) -> BulkJobRefusal:
    return BulkJobRefusal(
        client_id=to_global_id("Client", row.client_id),
        code=UserErrorCode(row.code),
        message=row.message or "",
    )


@strawberry.type(
    description="A bulk action on more clients than one request changes (`clientsBulkRun` "
    "above 1,000 clients), worked through by the job workers a chunk of clients per "
    "transaction: each client is judged by the single action's rules when its chunk runs, "
    "and audited as the single action is. Poll it until `finishedAt` is set."
)
class BulkJob:
    id: strawberry.ID = strawberry.field(description="The job's global ID.")
    action: str = strawberry.field(
        description="What it does: setStatus, block, unblock, assignManager or delete."
    )
    status: BulkJobStatus = strawberry.field(description="Where it is.")
    total: int = strawberry.field(description="Clients selected when it was started.")
    done: int = strawberry.field(
        description="Clients worked through: changed + unchanged + refused."
    )
    changed: int = strawberry.field(description="Clients changed.")
    unchanged: int = strawberry.field(description="Clients allowed but already so.")
    refused: int = strawberry.field(description="Clients refused (`refusals` lists them).")
    created_at: datetime = strawberry.field(description="When it was started.")
    started_at: datetime | None = strawberry.field(description="When a worker took it up.")
    finished_at: datetime | None = strawberry.field(
        description="When it finished, was cancelled or failed; null while it runs."
    )
    failure: str | None = strawberry.field(description="Why it failed, if it did.")
    pk: strawberry.Private[int]
    created_by_id: strawberry.Private[int | None]

    @strawberry.field(description="Who started it; null if that staff user was removed.")
    def created_by(self, info: Info) -> StaffUser | None:
        if self.created_by_id is None:
            return None
        loader = info.context.loaders.staff_user_by_id
        return now_or_later(loader, self.created_by_id, StaffUser.from_optional_row)  # type: ignore[no-any-return]

    @strawberry.field(description="The clients refused so far, by rank and id.")
    async def refusals(
        self, info: Info, first: FirstArg = None, after: AfterArg = None
    ) -> Connection[BulkJobRefusal]:
        page = page_request(REFUSALS_ORDER, first=first, after=after, last=None, before=None)
        return await paginate(
            info.context.db,
            select(ITEMS).where(
                ITEMS.c.job_id == self.pk, ITEMS.c.state == BulkItemState.REFUSED.value
            ),
            REFUSALS_ORDER,
            page,
            _refusal,
        )


ACTION_NAMES = {
    "set_status": "setStatus",
    "block": "block",
    "unblock": "unblock",
    "assign_manager": "assignManager",
    "delete": "delete",
}


def bulk_job(job: BulkJobModel) -> BulkJob:
    return BulkJob(
        id=to_global_id("BulkJob", job.id),
        action=ACTION_NAMES.get(str(job.action.get("kind")), str(job.action.get("kind"))),
        status=job.status,
        total=job.total,
        done=job.changed + job.unchanged + job.refused,
        changed=job.changed,
        unchanged=job.unchanged,
        refused=job.refused,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        failure=job.failure,
        pk=job.id,
        created_by_id=job.created_by_id,
    )


async def load_bulk_job(info: Info, pk: int) -> BulkJob | None:
    """The job, if the viewer may see it (who started it, and admins)."""
    viewer = info.context.viewer
    assert viewer is not None  # the fields require a scope
    async with info.context.db.exclusive() as session:
        job = await session.get(BulkJobModel, pk, populate_existing=True)
    if job is None or not bulk_jobs.Visible(viewer.staff_id, viewer.is_admin).sees(job):
        return None
    return bulk_job(job)


JobIdArg = Annotated[strawberry.ID, strawberry.argument(description="The job's global ID.")]


@strawberry.type
class BulkJobQuery:
    @strawberry.field(
        description="A bulk job, to follow its progress: the staff user who started it, and "
        "admins, see it; null for anyone else or an unknown ID.",
        permission_classes=[HasScope(Scope.CLIENTS_WRITE)],
    )
    async def bulk_job(self, info: Info, id: JobIdArg) -> BulkJob | None:
        pk = pk_of(id, "BulkJob")
        return None if pk is None else await load_bulk_job(info, pk)


@strawberry.type(description="The result of `bulkJobCancel`.")
class BulkJobCancelPayload:
    job: BulkJob | None = strawberry.field(description="The job as it is now; null if refused.")
    user_errors: list[UserError] = strawberry.field(
        description="Why it was refused: NOT_FOUND, ALREADY_FINISHED."
    )


@strawberry.type
class BulkJobMutation:
    @strawberry.mutation(
        description="Stop a bulk job: once this returns, no more of its clients are changed "
        "(a chunk in flight commits first); those done stay done. The staff user who started "
        "it, and admins. Audited (`bulk_job.cancel`).",
        permission_classes=[HasScope(Scope.CLIENTS_WRITE)],
    )
    async def bulk_job_cancel(self, info: Info, id: JobIdArg) -> BulkJobCancelPayload:
        pk = pk_of(id, "BulkJob")
        if pk is None:
            return BulkJobCancelPayload(
                job=None,
                user_errors=[
                    UserError(field=["id"], code=UserErrorCode.NOT_FOUND, message="No such job")
                ],
            )
        job, errors = await attempt(info, bulk_jobs.cancel, prefix=(), job_id=pk)
        return BulkJobCancelPayload(job=bulk_job(job) if job else None, user_errors=errors)
