"""Linked clients: a sub-account under a parent, one level deep, in the parent's currency."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client
from db.session import transaction
from services import audit
from services.actors import Actor
from services.clients import may_change
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied

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


async def _locked(session: AsyncSession, ids: list[int]) -> dict[int, Client]:
    """The clients, row-locked in id order (no deadlocks between two links)."""
    rows = await session.scalars(
        select(Client)
        .where(Client.id.in_(ids))
        .order_by(Client.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {client.id: client for client in rows}


async def link(session: AsyncSession, *, actor: Actor, parent_id: int, child_id: int) -> Client:
    """Make `child_id` a sub-account of `parent_id`."""
    if parent_id == child_id:
        raise DomainError(
            ErrorCode.SELF_LINK, "A client cannot be its own sub-account", ["child_id"]
        )
    async with transaction(session):
        found = await _locked(session, [parent_id, child_id])
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


async def unlink(session: AsyncSession, *, actor: Actor, child_id: int) -> tuple[Client, int]:
    """Make a sub-account a top-level client again; returns it and its former parent's id."""
    async with transaction(session):
        child = (await _locked(session, [child_id])).get(child_id)
        if child is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such client", ["child_id"])
        if not (await may_change(session, actor, [child]))[0]:
            raise PermissionDenied(
                "Managers unlink only their own clients", Denial.NOT_YOUR_CLIENT, [["child_id"]]
            )
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
