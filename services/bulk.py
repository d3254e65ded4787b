"""Actions on many clients at once, chosen by ids or by the list's filter and search: a
preview that changes nothing, then a run that applies the action to every client it may
and reports the others by id and code (not all or nothing).

Each client is judged by the single action's rules (services/clients.py, blocking.py): who
may change it, and what the action needs (no balance and no sub-accounts left behind to be
deleted). The preview's fingerprint names the selection; a run with it refuses
(SELECTION_CHANGED) when the selection is no longer the same clients.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from db.enums import ClientStatus
from db.models import AuditEntry, BulkJob, BulkJobItem, Client, StaffUser
from db.queries import among
from db.session import transaction
from services import audit, idempotency
from services.actors import Actor
from services.blocking import apply_block, apply_unblock, block_reason, is_blocked
from services.clients import archive_client, may_change
from services.errors import DomainError, ErrorCode
from services.locks import lock_clients
from services.money import format_money

# Up to SYNC_LIMIT clients a run is one transaction in the request; a larger selection (up
# to JOB_LIMIT) is a bulk job, worked through in chunks by the job workers.
SYNC_LIMIT = 1_000
JOB_LIMIT = 200_000  # a preview judges them all in the request: ~6 s at 200,000
READ_CHUNK = 1_000
SAMPLES = 5
KINDS = ("set_status", "block", "unblock", "assign_manager", "delete")


@dataclass(frozen=True, slots=True)
class Action:
    """One bulk action and its arguments."""

    kind: str
    status: ClientStatus | None = None
    reason: str | None = None
    until: datetime | None = None
    manager_id: int | None = None

    @classmethod
    def of_key(cls, key: dict[str, Any]) -> "Action":
        """The action `key()` wrote (a bulk job keeps its action so)."""
        return cls(
            kind=key["kind"],
            status=ClientStatus(key["status"]) if key.get("status") else None,
            reason=key.get("reason"),
            until=datetime.fromisoformat(key["until"]) if key.get("until") else None,
            manager_id=key.get("manager_id"),
        )

    def key(self) -> dict[str, Any]:
        return audit.json_safe(  # type: ignore[no-any-return]
            {
                "kind": self.kind,
                "status": self.status,
                "reason": self.reason,
                "until": self.until,
                "manager_id": self.manager_id,
            }
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    client_id: int
    code: ErrorCode | None  # refused, and why
    message: str = ""
    unchanged: bool = False  # allowed, but nothing to do (the status it has already)


@dataclass(slots=True)
class Outcome:
    """What a preview found, or a run did."""

    fingerprint: str
    verdicts: list[Verdict] = field(default_factory=list)
    as_job: bool = False  # a run of this selection would be a bulk job

    @property
    def total(self) -> int:
        return len(self.verdicts)

    @property
    def changing(self) -> list[int]:
        return [v.client_id for v in self.verdicts if v.code is None and not v.unchanged]

    @property
    def unchanged(self) -> list[int]:
        return [v.client_id for v in self.verdicts if v.code is None and v.unchanged]

    @property
    def refused(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.code is not None]

    def refusal_groups(self) -> list[tuple[ErrorCode, int, list[int]]]:
        """Per code, most first: how many, and the first few clients."""
        counts = Counter(v.code for v in self.refused)
        return [
            (code, n, [v.client_id for v in self.refused if v.code is code][:SAMPLES])
            for code, n in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
            if code is not None
        ]


def fingerprint(action: Action, ids: Sequence[int]) -> str:
    """Names the selection and the action: the same clients, the same action."""
    text = json.dumps({"action": action.key(), "ids": sorted(ids)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def check_action(session: AsyncSession, actor: Actor, action: Action) -> Action:
    """The action with its arguments checked (ValidationFailed/DomainError if not)."""
    if action.kind not in KINDS:
        raise DomainError(ErrorCode.REQUIRED, "Choose exactly one action", ["action"])
    if action.kind == "set_status" and action.status is None:
        raise DomainError(ErrorCode.REQUIRED, "Which status", ["action", "setStatus"])
    if action.kind == "block":
        reason = block_reason(action.reason or "", action.until, actor.now)
        return Action(kind="block", reason=reason, until=action.until)
    if action.kind == "assign_manager" and action.manager_id is not None:
        manager = await session.get(StaffUser, action.manager_id)
        if manager is None or not manager.is_active:
            raise DomainError(
                ErrorCode.NOT_FOUND, "No such staff user", ["action", "assignManager", "managerId"]
            )
    if action.kind == "assign_manager" and not actor.is_admin:
        if action.manager_id != actor.staff_id:
            raise DomainError(
                ErrorCode.NOT_ALLOWED,
                "Managers cannot give clients to others (ask an admin)",
                ["action", "assignManager", "managerId"],
            )
    return action


async def _wanted(
    session: AsyncSession,
    *,
    ids: Sequence[int] | None,
    conditions: Sequence[ColumnElement[bool]] | None,
) -> list[int]:
    """The selection's ids: those given, in order, once each; or those the conditions select,
    by id. At most JOB_LIMIT."""
    if ids is not None:
        wanted = list(dict.fromkeys(ids))
    else:
        found = await session.scalars(
            select(Client.id).where(*(conditions or [])).order_by(Client.id).limit(JOB_LIMIT + 1)
        )
        wanted = list(found)
    if not wanted:
        raise DomainError(ErrorCode.REQUIRED, "The selection holds no client", ["selection"])
    if len(wanted) > JOB_LIMIT:
        raise DomainError(
            ErrorCode.TOO_MANY,
            f"At most {JOB_LIMIT:,} clients at a time: narrow the filter",
            ["selection"],
        )
    return wanted


# What judging a client reads (a preview reads these, not whole rows)
JUDGED = (
    Client.id,
    Client.login,
    Client.manager_id,
    Client.parent_id,
    Client.balance,
    Client.currency,
    Client.status,
    Client.blocked_at,
    Client.blocked_until,
)


async def _read(session: AsyncSession, wanted: Sequence[int]) -> list[Any]:
    """The selected clients that exist, as rows of JUDGED, read a chunk at a time."""
    rows: list[Any] = []
    for start in range(0, len(wanted), READ_CHUNK):
        part = wanted[start : start + READ_CHUNK]
        rows.extend(await session.execute(select(*JUDGED).where(Client.id.in_(part))))
    return rows


async def _judge(
    session: AsyncSession, actor: Actor, action: Action, wanted: list[int], clients: Sequence[Any]
) -> list[Verdict]:
    """Each wanted client's verdict; `clients` are those that exist (Client objects, or rows
    of JUDGED)."""
    found = {client.id: client for client in clients}
    allowed: dict[int, bool] = {}
    for start in range(0, len(clients), READ_CHUNK):
        part = clients[start : start + READ_CHUNK]
        allowed.update(
            zip((c.id for c in part), await may_change(session, actor, part), strict=True)
        )
    subs: dict[int, int] = {}
    dialect = session.get_bind().dialect.name
    if action.kind == "delete" and clients:
        # the clients that leave: allowed and without a balance, less those whose
        # sub-accounts stay, until none more drops out (a parent whose refused sub-account
        # stays cannot go either)
        leaving = {pk for pk, client in found.items() if allowed[pk] and client.balance == 0}
        while leaving:
            rows = await session.execute(
                select(Client.parent_id, func.count())
                .where(
                    among(dialect, Client.parent_id, sorted(leaving)),
                    ~among(dialect, Client.id, sorted(leaving)),
                )
                .group_by(Client.parent_id)
            )
            staying = {parent: n for parent, n in rows if parent is not None}
            if not staying:
                break
            subs.update(staying)
            leaving -= set(staying)
    verdicts = []
    for pk in wanted:
        client = found.get(pk)
        if client is None:
            verdicts.append(Verdict(pk, ErrorCode.NOT_FOUND, "No such client"))
        elif not allowed[pk]:
            verdicts.append(
                Verdict(
                    pk,
                    ErrorCode.NOT_ALLOWED,
                    f"Managers change only their own clients and their sub-accounts: not "
                    f"{client.login}",
                )
            )
        elif (
            action.kind == "assign_manager"
            and not actor.is_admin
            and client.manager_id not in (None, actor.staff_id)
        ):
            verdicts.append(
                Verdict(
                    pk,
                    ErrorCode.NOT_ALLOWED,
                    f"{client.login} has its own manager: only an admin reassigns it",
                )
            )
        elif action.kind == "delete" and client.balance != 0:
            amount = format_money(client.balance, client.currency)
            verdicts.append(
                Verdict(pk, ErrorCode.HAS_BALANCE, f"{client.login} has a balance of {amount}")
            )
        elif action.kind == "delete" and subs.get(pk):
            verdicts.append(
                Verdict(
                    pk,
                    ErrorCode.HAS_SUB_ACCOUNTS,
                    f"{client.login} has {subs[pk]} sub-accounts that are not selected",
                )
            )
        else:
            verdicts.append(Verdict(pk, None, unchanged=_unchanged(action, client, actor.now)))
    return verdicts


def _unchanged(action: Action, client: Client, now: datetime) -> bool:
    if action.kind == "set_status":
        return client.status is action.status
    if action.kind == "unblock":
        return not is_blocked(client, now)
    if action.kind == "assign_manager":
        return client.manager_id == action.manager_id
    return False  # a block replaces reason and end; a deletion always does something


async def preview(
    session: AsyncSession,
    *,
    actor: Actor,
    action: Action,
    ids: Sequence[int] | None = None,
    conditions: Sequence[ColumnElement[bool]] | None = None,
) -> Outcome:
    """What a run would do now, changing nothing."""
    action = await check_action(session, actor, action)
    wanted = await _wanted(session, ids=ids, conditions=conditions)
    verdicts = await _judge(session, actor, action, wanted, await _read(session, wanted))
    await session.rollback()  # (only reads: the share-locks of `may_change` go)
    return Outcome(fingerprint(action, wanted), verdicts, as_job=len(wanted) > SYNC_LIMIT)


@dataclass(frozen=True, slots=True)
class JobStarted:
    """A run too large for one request: the job that does it."""

    job_id: int


OPERATION = "clients_bulk_run"


async def run(
    session: AsyncSession,
    *,
    actor: Actor,
    action: Action,
    expected: str,
    ids: Sequence[int] | None = None,
    conditions: Sequence[ColumnElement[bool]] | None = None,
    idempotency_key: str | None = None,
) -> Outcome | JobStarted:
    """Apply the action to every selected client it may change, each audited as the single
    action is; the others are reported. Up to SYNC_LIMIT clients in one transaction (the
    Outcome); a larger selection becomes a bulk job (JobStarted), worked through in chunks by
    the job workers (services/bulk_jobs.py). Refused as a whole if the selection is not the
    one previewed (`expected`, its fingerprint). With an idempotency key, a retry answers as
    the first run did (the same outcome, or the same job)."""
    if idempotency_key is not None:
        idempotency_key = idempotency.check_key(idempotency_key, field=["idempotency_key"])
    async with transaction(session):
        if idempotency_key is not None:
            request = {"fingerprint": expected, "action": action.key()}
            earlier = await idempotency.claim(
                session,
                staff_id=actor.staff_id,
                key=idempotency_key,
                operation=OPERATION,
                request_hashes=idempotency.fingerprints(OPERATION, request),
                now=actor.now,
            )
            if earlier is not None:
                return _replayed(expected, earlier)
        action = await check_action(session, actor, action)
        wanted = await _wanted(session, ids=ids, conditions=conditions)
        if len(wanted) > SYNC_LIMIT:
            if fingerprint(action, wanted) != expected:
                raise _changed()
            result: Outcome | JobStarted = JobStarted(
                await _create_job(session, actor, action, expected, wanted)
            )
        else:
            result = await _run_now(session, actor, action, expected, wanted, conditions)
        if idempotency_key is not None:
            await idempotency.remember(
                session, staff_id=actor.staff_id, key=idempotency_key, response=_stored(result)
            )
        return result


def _changed() -> DomainError:
    return DomainError(
        ErrorCode.SELECTION_CHANGED,
        "The selection is not what the preview showed (clients were added, removed or "
        "changed): preview again",
        ["fingerprint"],
    )


def _stored(result: Outcome | JobStarted) -> dict[str, Any]:
    if isinstance(result, JobStarted):
        return {"job_id": result.job_id}
    return {
        "verdicts": [
            [v.client_id, v.code.value if v.code else None, v.message, v.unchanged]
            for v in result.verdicts
        ]
    }


def _replayed(expected: str, response: dict[str, Any]) -> Outcome | JobStarted:
    if "job_id" in response:
        return JobStarted(response["job_id"])
    return Outcome(
        expected,
        [
            Verdict(pk, ErrorCode(code) if code else None, message, unchanged)
            for pk, code, message, unchanged in response["verdicts"]
        ],
    )


async def _run_now(
    session: AsyncSession,
    actor: Actor,
    action: Action,
    expected: str,
    wanted: list[int],
    conditions: Sequence[ColumnElement[bool]] | None,
) -> Outcome:
    found = await lock_clients(session, wanted)
    if conditions is not None:
        # decided on the locked rows: a client changed between the read and its lock so
        # that the filter no longer selects it is not the selection previewed
        still = await session.scalars(select(Client.id).where(Client.id.in_(wanted), *conditions))
        if set(still) != set(wanted):
            raise _changed()
    if fingerprint(action, wanted) != expected:
        raise _changed()
    clients = [found[pk] for pk in wanted if pk in found]
    verdicts = await _judge(session, actor, action, wanted, clients)
    await apply(session, actor, action, found, verdicts)
    return Outcome(expected, verdicts)


async def apply(
    session: AsyncSession,
    actor: Actor,
    action: Action,
    found: dict[int, Client],
    verdicts: Sequence[Verdict],
) -> None:
    """Apply the action to the clients (locked) whose verdict allows a change."""
    changing = [found[v.client_id] for v in verdicts if v.code is None and not v.unchanged]
    if not changing:
        return
    if action.kind in ("set_status", "assign_manager"):
        await _set_all(session, actor, action, changing)
        return
    if action.kind == "delete":  # sub-accounts before their parents
        changing.sort(key=lambda client: client.parent_id is None)
    for client in changing:
        await _apply(session, actor, action, client)


async def _set_all(
    session: AsyncSession, actor: Actor, action: Action, clients: Sequence[Client]
) -> None:
    """One column set on every client at once: one UPDATE and one INSERT of their audit
    entries (as `_apply` would write them one by one), the loaded objects kept in step."""
    name, value, audited = (
        ("status", action.status, "client.status_change")
        if action.kind == "set_status"
        else ("manager_id", action.manager_id, "client.update")
    )
    await session.execute(
        insert(AuditEntry),
        [
            audit.row_values(
                actor=actor,
                action=audited,
                target_type="Client",
                target_id=client.id,
                target_label=client.login,
                before={name: getattr(client, name)},
                after={name: value},
            )
            for client in clients
        ],
    )
    table = cast(Table, Client.__table__)
    ids = [client.id for client in clients]
    for start in range(0, len(ids), READ_CHUNK):
        await session.execute(
            update(table)
            .where(table.c.id.in_(ids[start : start + READ_CHUNK]))
            .values({name: value, "updated_at": actor.now})
        )
    for client in clients:
        set_committed_value(client, name, value)
        set_committed_value(client, "updated_at", actor.now)


async def _create_job(
    session: AsyncSession, actor: Actor, action: Action, expected: str, wanted: list[int]
) -> int:
    """The job that runs the action on `wanted`: its items pending, sub-accounts first."""
    parents: dict[int, int | None] = {}
    for start in range(0, len(wanted), READ_CHUNK):
        part = wanted[start : start + READ_CHUNK]
        rows = await session.execute(select(Client.id, Client.parent_id).where(Client.id.in_(part)))
        parents.update({row.id: row.parent_id for row in rows})
    job = BulkJob(
        created_by_id=actor.staff_id,
        action=action.key(),
        fingerprint=expected,
        total=len(wanted),
        created_at=actor.now,
        request_id=actor.request_id,
    )
    session.add(job)
    await session.flush()
    items = [
        {"job_id": job.id, "rank": 0 if parents.get(pk) is not None else 1, "client_id": pk}
        for pk in wanted
    ]
    for start in range(0, len(items), 5_000):
        await session.execute(insert(BulkJobItem), items[start : start + 5_000])
    await audit.record(
        session,
        actor=actor,
        action="bulk_job.start",
        target_type="BulkJob",
        target_id=job.id,
        target_label=action.kind,
        after={"action": action.key(), "total": len(wanted), "fingerprint": expected},
    )
    return job.id


async def _apply(session: AsyncSession, actor: Actor, action: Action, client: Client) -> None:
    if action.kind == "block":
        assert action.reason is not None
        await apply_block(
            session, actor=actor, client=client, reason=action.reason, until=action.until
        )
    elif action.kind == "unblock":
        await apply_unblock(session, actor=actor, client=client)
    elif action.kind == "delete":
        await archive_client(session, actor=actor, client=client)
    else:  # (setStatus and assignManager go by `_set_all`)
        raise AssertionError(action.kind)
