"""Linked clients: a sub-account under a parent, one level deep, in the parent's currency.

Both clients are row-locked (in id order, services/locks.py) before any rule is read, so a
link meets a deletion, a currency change or another link of either client one at a time."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client
from db.session import transaction
from services import audit
from services.actors import Actor
from services.clients import check_version, may_change
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied
from services.locks import lock_clients

MAX_DEPTH = 64  # walking up further than this means the data itself is broken


async def _ancestors(session: AsyncSession, client_id: int) -> list[int]:
    """The parent, its parent, and so on (a list: the rules keep it one long)."""
    chain: list[int] = []
    current: int | None = client_id
    while current is not None and len(chain) < MAX_DEPTH:
        current = await session.scalar(select(Client.parent_id).where(Client.id == current))
        if current is not None:
            if current in chain:
                break
            chain.append(current)
    return chain


async def _child_and_parent_locked(session: AsyncSession, child_id: int) -> Client:
    """The child, row-locked with its parent (in id order), its parent as of the lock."""
    parent_id = await session.scalar(select(Client.parent_id).where(Client.id == child_id))
    while True:
        found = await lock_clients(
            session, [child_id] if parent_id is None else [child_id, parent_id]
        )
        child = found.get(child_id)
        if child is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such client", ["child_id"])
        if child.parent_id == parent_id:
            return child
        parent_id = child.parent_id  # relinked before the lock: lock that parent too


async def link(
    session: AsyncSession,
    *,
    actor: Actor,
    parent_id: int,
    child_id: int,
    expected_version: int | None = None,
) -> Client:
    """Make `child_id` a sub-account of `parent_id` (`expected_version`: the child's)."""
    if parent_id == child_id:
        raise DomainError(
            ErrorCode.SELF_LINK, "A client cannot be its own sub-account", ["child_id"]
        )
    async with transaction(session):
        found = await lock_clients(session, [parent_id, child_id])
        parent, child = found.get(parent_id), found.get(child_id)
        if parent is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such client", ["parent_id"])
        if child is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such client", ["child_id"])
        if not all(await may_change(session, actor, [parent, child])):
            raise PermissionDenied(
                "Managers link only their own clients",
                Denial.NOT_YOUR_CLIENT,
                [["parent_id"], ["child_id"]],
            )
        await check_version(session, child.id, expected_version)
        if child.id in await _ancestors(session, parent.id):
            raise DomainError(
                ErrorCode.CYCLE,
                f"{child.login} is above {parent.login}: linking them would make a loop",
                ["child_id"],
            )
        if child.parent_id is not None:
            raise DomainError(
                ErrorCode.ALREADY_LINKED,
                f"{child.login} is already a sub-account; unlink it first",
                ["child_id"],
            )
        if parent.parent_id is not None:
            raise DomainError(
                ErrorCode.PARENT_IS_SUB_ACCOUNT,
                f"{parent.login} is itself a sub-account (links are one level deep)",
                ["parent_id"],
            )
        subs = await session.scalar(
            select(func.count()).select_from(Client).where(Client.parent_id == child.id)
        )
        if subs:
            raise DomainError(
                ErrorCode.CHILD_HAS_SUB_ACCOUNTS,
                f"{child.login} has sub-accounts of its own (links are one level deep)",
                ["child_id"],
            )
        if parent.currency != child.currency:
            raise DomainError(
                ErrorCode.CURRENCY_MISMATCH,
                f"{parent.login} uses {parent.currency}, {child.login} {child.currency}",
                ["child_id"],
            )
        child.parent_id = parent.id
        child.updated_at = actor.now
        await audit.record(
            session,
            actor=actor,
            action="client.link",
            target_type="Client",
            target_id=child.id,
            target_label=child.login,
            before={"parent_id": None},
            after={"parent_id": parent.id, "parent_login": parent.login},
        )
    return child


async def unlink(
    session: AsyncSession, *, actor: Actor, child_id: int, expected_version: int | None = None
) -> tuple[Client, int]:
    """Make a sub-account a top-level client again; returns it and its former parent's id."""
    async with transaction(session):
        child = await _child_and_parent_locked(session, child_id)
        if not (await may_change(session, actor, [child]))[0]:
            raise PermissionDenied(
                "Managers unlink only their own clients", Denial.NOT_YOUR_CLIENT, [["child_id"]]
            )
        await check_version(session, child.id, expected_version)
        if child.parent_id is None:
            raise DomainError(
                ErrorCode.NOT_LINKED, f"{child.login} is not a sub-account", ["child_id"]
            )
        parent_id = child.parent_id
        child.parent_id = None
        child.updated_at = actor.now
        await audit.record(
            session,
            actor=actor,
            action="client.unlink",
            target_type="Client",
            target_id=child.id,
            target_label=child.login,
            before={"parent_id": parent_id},
            after={"parent_id": None},
        )
    return child, parent_id
