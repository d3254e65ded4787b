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
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ClientStatus
from db.models import Client, StaffUser
from db.session import transaction
from services import audit
from services.actors import Actor
from services.blocking import apply_block, apply_unblock, block_reason, is_blocked
from services.clients import archive_client, may_change
from services.errors import DomainError, ErrorCode
from services.locks import lock_clients
from services.money import format_money

# A larger selection runs as a background job (issue 19, to come): refused here.
SYNC_LIMIT = 1_000
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


async def _check_action(session: AsyncSession, actor: Actor, action: Action) -> Action:
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


async def _selected(
    session: AsyncSession,
    *,
    ids: Sequence[int] | None,
    conditions: Sequence[ColumnElement[bool]] | None,
    lock: bool,
) -> tuple[list[int], list[Client]]:
    """The selection's ids (those given, in order, once each; or those the conditions
    select, by id) and the clients among them that exist (locked, for a run)."""
    if ids is not None:
        wanted = list(dict.fromkeys(ids))
    else:
        found = await session.scalars(
            select(Client.id).where(*(conditions or [])).order_by(Client.id).limit(SYNC_LIMIT + 1)
        )
        wanted = list(found)
    if not wanted:
        raise DomainError(ErrorCode.REQUIRED, "The selection holds no client", ["selection"])
    if len(wanted) > SYNC_LIMIT:
        raise DomainError(
            ErrorCode.TOO_MANY,
            f"At most {SYNC_LIMIT:,} clients at a time (larger selections will run as "
            "background jobs)",
            ["selection"],
        )
    if lock:
        clients = await lock_clients(session, wanted)
    else:
        rows = await session.scalars(select(Client).where(Client.id.in_(wanted)))
        clients = {client.id: client for client in rows}
    return wanted, [clients[pk] for pk in wanted if pk in clients]


async def _judge(
    session: AsyncSession, actor: Actor, action: Action, wanted: list[int], clients: list[Client]
) -> list[Verdict]:
    found = {client.id: client for client in clients}
    allowed = dict(zip(found, await may_change(session, actor, clients), strict=True))
    subs: dict[int, int] = {}
    if action.kind == "delete" and clients:
        # the clients that leave: allowed and without a balance, less those whose
        # sub-accounts stay, until none more drops out (a parent whose refused sub-account
        # stays cannot go either)
        leaving = {pk for pk, client in found.items() if allowed[pk] and client.balance == 0}
        while True:
            rows = await session.execute(
                select(Client.parent_id, func.count())
                .where(Client.parent_id.in_(leaving), Client.id.not_in(leaving))
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
    action = await _check_action(session, actor, action)
    wanted, clients = await _selected(session, ids=ids, conditions=conditions, lock=False)
    verdicts = await _judge(session, actor, action, wanted, clients)
    await session.rollback()  # (only reads: the share-locks of `may_change` go)
    return Outcome(fingerprint(action, wanted), verdicts)


async def run(
    session: AsyncSession,
    *,
    actor: Actor,
    action: Action,
    expected: str,
    ids: Sequence[int] | None = None,
    conditions: Sequence[ColumnElement[bool]] | None = None,
) -> Outcome:
    """Apply the action to every selected client it may change, in one transaction, each
    audited as the single action is; the others are reported. Refused as a whole if the
    selection is not the one previewed (`expected`, its fingerprint)."""
    async with transaction(session):
        action = await _check_action(session, actor, action)
        wanted, clients = await _selected(session, ids=ids, conditions=conditions, lock=True)
        if conditions is not None and wanted:
            # decided on the locked rows: a client changed between the read and its lock so
            # that the filter no longer selects it is not the selection previewed
            still = await session.scalars(
                select(Client.id).where(Client.id.in_(wanted), *conditions)
            )
            if set(still) != set(wanted):
                wanted = []  # (refused just below)
        if fingerprint(action, wanted) != expected:
            raise DomainError(
                ErrorCode.SELECTION_CHANGED,
                "The selection is not what the preview showed (clients were added, removed or "
                "changed): preview again",
                ["fingerprint"],
            )
        verdicts = await _judge(session, actor, action, wanted, clients)
        found = {client.id: client for client in clients}
        changing = [found[v.client_id] for v in verdicts if v.code is None and not v.unchanged]
        if action.kind == "delete":  # sub-accounts before their parents
            changing.sort(key=lambda client: client.parent_id is None)
        for client in changing:
            await _apply(session, actor, action, client)
        return Outcome(expected, verdicts)


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
    else:
        name, value = (
            ("status", action.status)
            if action.kind == "set_status"
            else ("manager_id", action.manager_id)
        )
        await audit.record(
            session,
            actor=actor,
            action="client.status_change" if name == "status" else "client.update",
            target_type="Client",
            target_id=client.id,
            target_label=client.login,
            before={name: getattr(client, name)},
            after={name: value},
        )
        setattr(client, name, value)
        client.updated_at = actor.now
