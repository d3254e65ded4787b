"""Bulk actions in the API: preview what an action would do to a selection (ids, or the
list's filter and search), then run it with the preview's fingerprint."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
import structlog

from db.enums import ClientStatus, Scope
from gql.arguments import Problem, check_arguments
from gql.clients.filters import ClientFilter, FilterScope, client_conditions, filter_problems
from gql.clients.jobs import BulkJob, load_bulk_job
from gql.clients.mutations import client_pk
from gql.clients.types import Client, client_from_row
from gql.context import Info
from gql.enums import UserErrorCode
from gql.errors import Forbidden, UserError, attempt
from gql.node import pk_of, to_global_id
from gql.permissions import HasScope
from services import bulk
from services.errors import Denial

log = structlog.get_logger("clientdesk.bulk")


@strawberry.input(
    description="Which clients: `ids`, or the list's `filter` and `search` (as `clients` "
    "takes them; the selection is what the list would show the viewer). Up to 1,000 clients "
    "a run changes them in the request; up to 200,000 it starts a bulk job."
)
class ClientSelection:
    ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="These clients (global IDs)."
    )
    filter: ClientFilter | None = strawberry.field(
        default=None, description="The clients this filter selects."
    )
    search: str | None = strawberry.field(
        default=None, description="The clients this search finds (with the filter, if any)."
    )


@strawberry.input(description="To block: why, and until when (none: until unblocked).")
class ClientBulkBlock:
    reason: str = strawberry.field(description="Why (1-500 characters).")
    until: datetime | None = strawberry.field(
        default=None, description="When the blocks end by themselves (in the future)."
    )


@strawberry.input(description="To whom: a manager's ID, or null to leave the clients without.")
class ClientBulkAssign:
    manager_id: strawberry.ID | None = strawberry.field(
        default=None, description="The staff user; null: no manager."
    )


@strawberry.input(description="Exactly one action.")
class ClientBulkAction:
    set_status: ClientStatus | None = strawberry.field(
        default=None, description="Set this status (as clientsSetStatus)."
    )
    block: ClientBulkBlock | None = strawberry.field(
        default=None, description="Block (as clientBlock)."
    )
    unblock: bool | None = strawberry.field(
        default=None, description="true: lift the blocks in force (as clientUnblock)."
    )
    assign_manager: ClientBulkAssign | None = strawberry.field(
        default=None,
        description="Give the clients to a manager (managers: only to themselves).",
    )
    delete: bool | None = strawberry.field(
        default=None,
        description="true: delete (as clientsDelete; needs the clients:delete scope; "
        "restorable until purged).",
    )


@strawberry.type(description="Clients refused for one reason.")
class ClientBulkRefusalGroup:
    code: UserErrorCode = strawberry.field(description="Why.")
    count: int = strawberry.field(description="How many.")
    samples: list[Client] = strawberry.field(
        description="The first few of them (at most 5; a refused id that is no client is "
        "left out).",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )


@strawberry.type(description="What a run would do now; nothing was changed.")
class ClientBulkPreview:
    total: int = strawberry.field(description="Clients selected.")
    will_change: int = strawberry.field(description="Those the run would change.")
    unchanged: int = strawberry.field(
        description="Those allowed but already so (the status they have, not blocked, …)."
    )
    refused: int = strawberry.field(description="Those the run would refuse.")
    refusals: list[ClientBulkRefusalGroup] = strawberry.field(
        description="The refused, per reason, most first."
    )
    fingerprint: str = strawberry.field(
        description="Names this selection and action: pass it to `clientsBulkRun`, which "
        "refuses (SELECTION_CHANGED) if the selection is no longer the same clients."
    )
    runs_as_job: bool = strawberry.field(
        description="Whether a run would be a bulk job (more than 1,000 clients): its "
        "clients are then judged again, as they are, when their chunk runs."
    )


@strawberry.type(description="The result of `clientsBulkPreview`.")
class ClientsBulkPreviewPayload:
    preview: ClientBulkPreview | None = strawberry.field(description="Null if refused.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="A client the run did not change, and why.")
class ClientBulkRefusal:
    client_id: strawberry.ID = strawberry.field(description="The client's global ID.")
    code: UserErrorCode = strawberry.field(description="Why.")
    message: str = strawberry.field(description="Why, for people.")


@strawberry.type(description="The result of `clientsBulkRun`.")
class ClientsBulkRunPayload:
    job: BulkJob | None = strawberry.field(
        description="The bulk job doing it, for a selection of more than 1,000 clients "
        "(then the lists below are empty: follow the job); null otherwise."
    )
    changed_ids: list[strawberry.ID] = strawberry.field(
        description="The clients changed (each audited as the single action is)."
    )
    unchanged_ids: list[strawberry.ID] = strawberry.field(
        description="The clients allowed but already so."
    )
    refusals: list[ClientBulkRefusal] = strawberry.field(
        description="The clients refused, each with its reason."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why the run as a whole was refused (then nothing changed)."
    )


def _action(info: Info, action: ClientBulkAction) -> bulk.Action | UserError:
    given = [
        name
        for name, value in (
            ("set_status", action.set_status),
            ("block", action.block),
            ("unblock", action.unblock or None),
            ("assign_manager", action.assign_manager),
            ("delete", action.delete or None),
        )
        if value is not None
    ]
    if len(given) != 1:
        return UserError(
            field=["action"], code=UserErrorCode.REQUIRED, message="Choose exactly one action"
        )
    kind = given[0]
    viewer = info.context.viewer
    # the scope the single action needs (clientsDelete; clientUpdate's managerId)
    needed = {"delete": Scope.CLIENTS_DELETE, "assign_manager": Scope.STAFF_ADMIN}.get(kind)
    if needed is not None and viewer is not None and not viewer.has_scope(needed):
        raise Forbidden(
            f"This token lacks the `{needed.value}` scope.",
            Denial.MISSING_SCOPE,
            scope=needed.value,
        )
    if kind == "block":
        assert action.block is not None
        return bulk.Action(kind=kind, reason=action.block.reason, until=action.block.until)
    if kind == "assign_manager":
        assert action.assign_manager is not None
        manager = action.assign_manager.manager_id
        manager_pk = (pk_of(manager, "StaffUser") or 0) if manager is not None else None
        return bulk.Action(kind=kind, manager_id=manager_pk)
    return bulk.Action(kind=kind, status=action.set_status)


def _selection(info: Info, selection: ClientSelection) -> tuple[list[int] | None, list[Any] | None]:
    given_ids = selection.ids is not None
    if given_ids == (selection.filter is not None or selection.search is not None):
        return None, None
    if given_ids:
        return [client_pk(i) for i in selection.ids or []], None
    viewer = info.context.viewer
    assert viewer is not None  # the field requires a scope
    scope = FilterScope(viewer_id=viewer.staff_id, now=info.context.now)
    return None, client_conditions(selection.filter, selection.search, scope)


# where a checked argument of an action is, in the mutation's arguments
ACTION_PATHS = {
    "reason": ["action", "block", "reason"],
    "until": ["action", "block", "until"],
    "idempotency_key": ["idempotencyKey"],
}
SelectionArg = Annotated[ClientSelection, strawberry.argument(description="Which clients.")]
ActionArg = Annotated[ClientBulkAction, strawberry.argument(description="What to do.")]
ONE_WAY = UserError(
    field=["selection"],
    code=UserErrorCode.REQUIRED,
    message="Select by `ids`, or by `filter` and/or `search`: one of the two",
)


@strawberry.type
class BulkMutation:
    @strawberry.mutation(
        description="What a bulk action would do to a selection, changing nothing: how many "
        "clients it would change, which it would leave as they are, which it would refuse "
        "and why (with a few of each), and a fingerprint to run it with. Each client is "
        "judged by the single action's rules (a manager's clients and their sub-accounts; "
        "no balance and no sub-accounts left behind to delete).",
        permission_classes=[HasScope(Scope.CLIENTS_WRITE)],
    )
    async def clients_bulk_preview(
        self, info: Info, selection: SelectionArg, action: ActionArg
    ) -> ClientsBulkPreviewPayload:
        chosen = _action(info, action)
        if isinstance(chosen, UserError):
            return ClientsBulkPreviewPayload(preview=None, user_errors=[chosen])
        ids, conditions = _selection(info, selection)
        if ids is None and conditions is None:
            return ClientsBulkPreviewPayload(preview=None, user_errors=[ONE_WAY])
        outcome, errors = await attempt(
            info,
            bulk.preview,
            prefix=(),
            paths=ACTION_PATHS,
            action=chosen,
            ids=ids,
            conditions=conditions,
        )
        if outcome is None:
            return ClientsBulkPreviewPayload(preview=None, user_errors=errors)
        loader = info.context.loaders.client_by_id
        groups = []
        for code, count, samples in outcome.refusal_groups():
            rows = await loader.load_many(samples)
            groups.append(
                ClientBulkRefusalGroup(
                    code=code,
                    count=count,
                    samples=[client_from_row(info, row) for row in rows if row is not None],
                )
            )
        preview = ClientBulkPreview(
            total=outcome.total,
            will_change=len(outcome.changing),
            unchanged=len(outcome.unchanged),
            refused=len(outcome.refused),
            refusals=groups,
            fingerprint=outcome.fingerprint,
            runs_as_job=outcome.as_job,
        )
        return ClientsBulkPreviewPayload(preview=preview, user_errors=[])

    @strawberry.mutation(
        description="Run a bulk action previewed with `clientsBulkPreview` (its "
        "`fingerprint`): every selected client that may be changed is, each audited as the "
        "single action is; the others are reported by id and reason. Up to 1,000 clients in "
        "one transaction, answered at once; more start a bulk job (`job`: follow it with "
        "`bulkJob`, stop it with `bulkJobCancel`). Refused as a whole (SELECTION_CHANGED) if "
        "the selection is no longer the clients the preview showed. With an "
        "`idempotencyKey`, a retry answers as the first run did (the same job).",
        permission_classes=[HasScope(Scope.CLIENTS_WRITE)],
    )
    async def clients_bulk_run(
        self,
        info: Info,
        selection: SelectionArg,
        action: ActionArg,
        fingerprint: Annotated[str, strawberry.argument(description="The preview's fingerprint.")],
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Makes a retry safe: the same key with the same selection and "
                "action answers as the first run did (for 24 hours); with another, "
                "IDEMPOTENCY_KEY_REUSED."
            ),
        ] = None,
    ) -> ClientsBulkRunPayload:
        nothing = ClientsBulkRunPayload(
            job=None, changed_ids=[], unchanged_ids=[], refusals=[], user_errors=[]
        )
        chosen = _action(info, action)
        if isinstance(chosen, UserError):
            nothing.user_errors = [chosen]
            return nothing
        ids, conditions = _selection(info, selection)
        if ids is None and conditions is None:
            nothing.user_errors = [ONE_WAY]
            return nothing
        outcome, errors = await attempt(
            info,
            bulk.run,
            prefix=(),
            paths=ACTION_PATHS,
            action=chosen,
            expected=fingerprint[:100],
            ids=ids,
            conditions=conditions,
            idempotency_key=idempotency_key,
        )
        if outcome is None:
            nothing.user_errors = errors
            return nothing
        if isinstance(outcome, bulk.JobStarted):
            jobs = info.context.jobs
            assert jobs is not None
            try:
                await jobs.defer_bulk_job(outcome.job_id, chosen.kind)
            except Exception:  # the job is committed: the workers' minutely pass queues it
                log.exception("bulk_job_not_queued", job_id=outcome.job_id)
            nothing.job = await load_bulk_job(info, outcome.job_id)
            return nothing
        return ClientsBulkRunPayload(
            job=None,
            changed_ids=[to_global_id("Client", pk) for pk in outcome.changing],
            unchanged_ids=[to_global_id("Client", pk) for pk in outcome.unchanged],
            refusals=[
                ClientBulkRefusal(
                    client_id=to_global_id("Client", v.client_id),
                    code=v.code,
                    message=v.message,
                )
                for v in outcome.refused
                if v.code is not None
            ],
            user_errors=[],
        )


def selection_problems(arguments: dict[str, Any]) -> list[Problem]:
    """The problems `clients` reports for a selection's filter and search, under `selection`
    (userErrors of the payload, like the other argument checks of a mutation)."""
    selection = arguments.get("selection")
    if not isinstance(selection, ClientSelection):
        return []
    found = filter_problems({"filter": selection.filter, "search": selection.search})
    return [Problem(["selection", *p.path], p.code, p.message) for p in found]


check_arguments("Mutation", "clients_bulk_preview", selection_problems)
check_arguments("Mutation", "clients_bulk_run", selection_problems)
