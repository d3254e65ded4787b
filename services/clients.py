"""Client accounts: create, change, disable and delete them, by the rules.

Every function checks all of its input first and reports every problem together
(ValidationFailed); only then does it write, in one transaction with its audit entries.
Field paths in errors are the snake_case names of the values given.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ClientStatus
from db.models import (
    Category,
    Client,
    ClientConnection,
    ClientPasswordToken,
    CreditEntry,
    CustomFieldDefinition,
    CustomFieldValue,
    DeletedClient,
    Department,
    MailMessage,
    StaffUser,
    client_categories,
    client_departments,
)
from db.session import transaction
from services import audit
from services.actors import Actor
from services.auth import hash_password_async
from services.custom_fields import check_value
from services.deletion import login_reserved
from services.errors import Denial, DomainError, ErrorCode, PermissionDenied, ValidationFailed
from services.languages import normalize_language
from services.locks import lock_client, lock_client_row, lock_clients
from services.login_details import KIND as LOGIN_DETAILS
from services.login_details import send_login_details
from services.money import check_amount, format_money
from services.passwords import check_password_async
from services.validation import (
    Checks,
    column_length,
    normalize_country,
    normalize_currency,
    normalize_email,
    normalize_login,
    normalize_phone,
    quoted,
    text,
)

MAX_BULK = 500
# One login e-mail to a client at a time: a second click within this while would send a second
# link that makes the first one's useless.
LOGIN_DETAILS_PAUSE = timedelta(seconds=60)
PERCENT_LIMITS = (Decimal(-100), Decimal(1000))  # (exclusive, inclusive)
# What create and update accept (create also takes password, parent_id, send_login_details).
EDITABLE = frozenset(
    {
        "login",
        "name",
        "email",
        "phone",
        "country",
        "currency",
        "language",
        "status",
        "manager_id",
        "credit_limit",
        "moderation",
        "valid_till",
        "department_ids",
        "category_ids",
        "custom_fields",
        "price_adjustment_percent",
    }
)


@dataclass(frozen=True, slots=True)
class CheckedPassword:
    """A password scored and hashed before any transaction begins (CPU work that should hold
    no lock and no connection): its hash, or why the policy refuses it."""

    hash: str | None
    errors: list[DomainError]


async def prepare_password(
    password: str, *, user_inputs: Sequence[str], min_score: int
) -> CheckedPassword:
    """Score and hash a password for `create_client` or `change_password`, outside their
    transactions (the words of the client's login, name and e-mail count as guessable)."""
    try:
        await check_password_async(
            password, field=["password"], user_inputs=user_inputs, min_score=min_score
        )
    except DomainError as error:
        return CheckedPassword(None, [error])
    return CheckedPassword(await hash_password_async(password), [])


async def may_change(session: AsyncSession, actor: Actor, clients: Sequence[Client]) -> list[bool]:
    """Admins change every client; managers their own clients and those clients' sub-accounts
    (a sub-account keeps its own manager: unlinked, it is theirs alone again)."""
    if actor.is_admin:
        return [True] * len(clients)
    parent_ids = {c.parent_id for c in clients if c.parent_id is not None}
    parent_managers: dict[int, int | None] = {}
    if parent_ids:
        # the parents' rows share-locked: a reassignment of a parent waits for this change,
        # and one made before it is what this decides on
        rows = await session.execute(
            select(Client.id, Client.manager_id)
            .where(Client.id.in_(parent_ids))
            .order_by(Client.id)
            .with_for_update(read=True)
        )
        parent_managers = {row.id: row.manager_id for row in rows}
    return [
        may_change_client(
            is_admin=actor.is_admin,
            staff_id=actor.staff_id,
            manager_id=client.manager_id,
            parent_manager_id=parent_managers.get(client.parent_id)
            if client.parent_id is not None
            else None,
        )
        for client in clients
    ]


def may_change_client(
    *, is_admin: bool, staff_id: int, manager_id: int | None, parent_manager_id: int | None
) -> bool:
    """The rule of `may_change` for one client, given its manager and its parent's manager
    (None without a parent); reads (`Client.viewerCan`) apply it to rows read unlocked."""
    return is_admin or staff_id in (manager_id, parent_manager_id)


async def client_for_change(
    session: AsyncSession, *, actor: Actor, client_id: int, expected_version: int | None = None
) -> Client:
    """The client, row-locked and read afresh, if the actor may change it (NOT_FOUND when it
    is gone, PermissionDenied when the actor may not) and it is at `expected_version` if one
    is given (STALE_VERSION otherwise)."""
    client = await lock_client(session, client_id)
    await _check_may_change(session, actor, client)
    await check_version(session, client.id, expected_version)
    return client


async def check_version(session: AsyncSession, client_id: int, expected: int | None) -> None:
    """STALE_VERSION unless the client, locked by the caller, is at version `expected` (if
    one is given): someone else changed it since the caller read it."""
    if expected is None:
        return
    version = Client.__table__.c.version
    current = await session.scalar(select(version).where(Client.__table__.c.id == client_id))
    if current != expected:
        raise DomainError(
            ErrorCode.STALE_VERSION,
            f"The client changed since version {expected}: it is at version {current}",
            ["expectedVersion"],
        )


async def client_row_for_change(session: AsyncSession, *, actor: Actor, client_id: int) -> Any:
    """`client_for_change` as a row (its columns as attributes) rather than an ORM object: for
    a change that writes with statements of its own (the ledger's)."""
    client = await lock_client_row(session, client_id)
    if client is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such client", ["id"])
    await _check_may_change(session, actor, client)
    return client


async def _check_may_change(session: AsyncSession, actor: Actor, client: Any) -> None:
    if not (await may_change(session, actor, [client]))[0]:
        raise PermissionDenied(
            "Managers change only their own clients and their sub-accounts",
            Denial.NOT_YOUR_CLIENT,
            [["id"]],
        )


def check_percent(value: Decimal, *, field: list[str]) -> Decimal:
    """A price adjustment: above -100 and at most 1000 percent, two decimals."""
    low, high = PERCENT_LIMITS
    if not value.is_finite() or "e" in getattr(value, "written", "").lower():
        raise DomainError(ErrorCode.INVALID_AMOUNT, "Not a plain decimal number", field)
    if not low < value <= high:  # first: quantizing a huge number fails
        raise DomainError(ErrorCode.OUT_OF_RANGE, "Above -100 and at most 1000 (percent)", field)
    if value != value.quantize(Decimal("0.01")):
        raise DomainError(ErrorCode.INVALID_AMOUNT_PRECISION, "At most 2 decimals", field)
    return value


async def _existing_ids(
    session: AsyncSession,
    model: type[Department] | type[Category],
    ids: list[int],
    field: str,
    checks: Checks,
) -> list[int]:
    found = set(await session.scalars(select(model.id).where(model.id.in_(ids))))
    for n, pk in enumerate(ids):
        if pk not in found:
            checks.add(ErrorCode.NOT_FOUND, f"No such {model.__name__.lower()}", [field, str(n)])
    return list(dict.fromkeys(ids))


async def _clean(
    session: AsyncSession,
    values: dict[str, Any],
    *,
    current: Client | None,
    actor: Actor,
    password: CheckedPassword | None = None,
) -> dict[str, Any]:
    """Validate and normalize the given values against the rules; raise every error found."""
    checks = Checks()
    clean: dict[str, Any] = {}

    def value(name: str) -> Any:
        return clean[name] if name in clean else values.get(name, getattr(current, name, None))

    if current is None:
        for name in ("login", "password", "currency"):
            if not values.get(name):
                checks.add(ErrorCode.REQUIRED, "This is required", [name])
    if values.get("login") or (current is not None and "login" in values):  # "" is no login
        login = checks.run(normalize_login, values["login"] or "", field=["login"])
        if login is not None and (current is None or login != current.login):
            if await session.scalar(select(Client.id).where(Client.login == login)):
                checks.add(ErrorCode.LOGIN_TAKEN, f"The login {login!r} is taken", ["login"])
            elif await login_reserved(session, login) is not None:
                checks.add(
                    ErrorCode.LOGIN_TAKEN,
                    f"The login {login!r} belongs to a deleted client until it is purged "
                    "(restore it with clientsRestore, or choose another)",
                    ["login"],
                )
        clean["login"] = login
    if "name" in values:
        clean["name"] = checks.run(
            text, values["name"], field=["name"], maximum=column_length(Client.name)
        )
    if "country" in values:  # "" clears it, as null does
        country = (values["country"] or "").strip()
        clean["country"] = (
            country and checks.run(normalize_country, country, field=["country"])
        ) or None
    if "email" in values:
        email = values["email"]
        clean["email"] = (email or "").strip() and checks.run(
            normalize_email, email, field=["email"]
        )
        clean["email"] = clean["email"] or None
    if "phone" in values:
        phone = (values["phone"] or "").strip()
        clean["phone"] = phone and checks.run(
            normalize_phone, phone, country=value("country"), field=["phone"]
        )
        clean["phone"] = clean["phone"] or None
    if "language" in values:
        language = (values["language"] or "").strip()
        clean["language"] = (
            language and checks.run(normalize_language, language, field=["language"])
        ) or None
    if values.get("currency") or (current is not None and "currency" in values):
        currency = checks.run(normalize_currency, values["currency"] or "", field=["currency"])
        if currency is not None and current is not None and currency != current.currency:
            entries = await session.scalar(
                select(func.count())
                .select_from(CreditEntry)
                .where(CreditEntry.client_id == current.id)
            )
            subs = await session.scalar(
                select(func.count()).select_from(Client).where(Client.parent_id == current.id)
            )
            if entries or subs or current.parent_id is not None:
                checks.add(
                    ErrorCode.CURRENCY_LOCKED,
                    "The currency is fixed once the client has ledger entries or linked accounts",
                    ["currency"],
                )
        clean["currency"] = currency
    currency = value("currency")
    if "status" in values:
        clean["status"] = values["status"] or ClientStatus.ACTIVE
    if "moderation" in values:
        clean["moderation"] = bool(values["moderation"])
    if "valid_till" in values:
        clean["valid_till"] = values["valid_till"]
    if "manager_id" in values:
        manager_id = values["manager_id"]
        if manager_id is not None:
            manager = await session.get(StaffUser, manager_id)
            if manager is None or not manager.is_active:
                checks.add(ErrorCode.NOT_FOUND, "No such staff user", ["manager_id"])
        if not actor.is_admin and manager_id != actor.staff_id:
            checks.add(
                ErrorCode.NOT_ALLOWED,
                "Managers cannot give clients to others (ask an admin)",
                ["manager_id"],
            )
        elif (
            not actor.is_admin
            and current is not None
            and current.manager_id not in (None, actor.staff_id)
        ):
            # a manager reaches another manager's sub-account through its parent; taking it
            # over (and then unlinking it) is a reassignment, which is an admin's
            checks.add(
                ErrorCode.NOT_ALLOWED,
                "This client has its own manager; only an admin reassigns it",
                ["manager_id"],
            )
        clean["manager_id"] = manager_id
    if "credit_limit" in values and currency is not None:
        limit = checks.run(check_amount, values["credit_limit"], currency, field=["credit_limit"])
        if limit is not None and limit < 0:
            checks.add(ErrorCode.INVALID_AMOUNT, "A credit limit is zero or more", ["credit_limit"])
        elif limit is not None and current is not None and current.balance + limit < 0:
            checks.add(
                ErrorCode.CREDIT_LIMIT_BELOW_DEBT,
                f"The client owes {format_money(-current.balance, currency)}; "
                "the limit cannot be lower",
                ["credit_limit"],
            )
        clean["credit_limit"] = limit
    if "price_adjustment_percent" in values:
        clean["price_adjustment_percent"] = checks.run(
            check_percent, values["price_adjustment_percent"], field=["price_adjustment_percent"]
        )
    if "parent_id" in values and values["parent_id"] is not None:
        parent = await session.get(Client, values["parent_id"])
        if parent is None:
            checks.add(ErrorCode.NOT_FOUND, "No such client", ["parent_id"])
        elif parent.parent_id is not None:
            checks.add(
                ErrorCode.PARENT_INVALID, f"{parent.login} is itself a sub-account", ["parent_id"]
            )
        elif currency is not None and parent.currency != currency:
            checks.add(
                ErrorCode.PARENT_INVALID,
                f"{parent.login} uses {parent.currency}; a sub-account uses its parent's currency",
                ["parent_id"],
            )
        elif not (await may_change(session, actor, [parent]))[0]:
            checks.add(ErrorCode.NOT_ALLOWED, "Not one of your clients", ["parent_id"])
        clean["parent_id"] = values["parent_id"]
    for name, model in (("department_ids", Department), ("category_ids", Category)):
        if name in values:
            clean[name] = await _existing_ids(session, model, values[name] or [], name, checks)
    if "custom_fields" in values or current is None:  # a new client needs the required ones
        clean["custom_fields"] = await _custom_values(
            session, values.get("custom_fields") or {}, checks, creating=current is None
        )
    if values.get("password") and password is not None:
        checks.errors.extend(password.errors)
    if (
        value("email") is None
        and value("phone") is None
        and not any(e.field in (["email"], ["phone"]) for e in checks.errors)
    ):
        for contact in ("email", "phone"):
            checks.add(
                ErrorCode.CONTACT_REQUIRED, "Give an e-mail address or a phone number", [contact]
            )
    if values.get("send_login_details") and value("email") is None:
        checks.add(
            ErrorCode.CONTACT_REQUIRED,
            "Login details go by e-mail: give an e-mail address",
            ["send_login_details"],
        )
    checks.raise_if_any()
    return clean


async def _custom_values(
    session: AsyncSession, given: dict[str, Any], checks: Checks, *, creating: bool
) -> dict[int, Any]:
    """Values by definition id; errors point at the position of the value given. A required
    field's value may not be null or blank (on a new client or a change), and a new client
    needs one for every required field; a client that lacks one (made required later) is not
    refused for changing other fields."""
    definitions = {d.key: d for d in await session.scalars(select(CustomFieldDefinition))}
    values: dict[int, Any] = {}
    for n, (key, raw) in enumerate(given.items()):
        definition = definitions.get(key)
        if definition is None:
            checks.add(
                ErrorCode.CUSTOM_FIELD_UNKNOWN,
                f"No custom field {quoted(key)}",
                ["custom_fields", str(n)],
            )
            continue
        if definition.required and (raw is None or (isinstance(raw, str) and not raw.strip())):
            checks.add(
                ErrorCode.CUSTOM_FIELD_REQUIRED,
                f"{definition.label} ({key}) is required: it cannot be empty or removed",
                ["custom_fields", str(n)],
            )
            continue
        checked = checks.run(check_value, definition, raw, field=["custom_fields", str(n)])
        values[definition.id] = checked
    if creating:
        for key, definition in definitions.items():
            if definition.required and key not in given:
                checks.add(
                    ErrorCode.CUSTOM_FIELD_REQUIRED,
                    f"{definition.label} ({key}) is required",
                    ["custom_fields"],
                )
    return values


async def _related(session: AsyncSession, client_id: int) -> dict[str, Any]:
    """A client's access lists and custom values, for audit snapshots."""
    departments = list(
        await session.scalars(
            select(client_departments.c.department_id)
            .where(client_departments.c.client_id == client_id)
            .order_by(client_departments.c.department_id)
        )
    )
    categories = list(
        await session.scalars(
            select(client_categories.c.category_id)
            .where(client_categories.c.client_id == client_id)
            .order_by(client_categories.c.category_id)
        )
    )
    custom = {
        row.key: row.value
        for row in await session.execute(
            select(CustomFieldDefinition.key, CustomFieldValue.value)
            .join(CustomFieldValue, CustomFieldValue.definition_id == CustomFieldDefinition.id)
            .where(CustomFieldValue.client_id == client_id)
        )
    }
    return {"department_ids": departments, "category_ids": categories, "custom_fields": custom}


async def _write_related(session: AsyncSession, client_id: int, clean: dict[str, Any]) -> None:
    for name, table, column in (
        ("department_ids", client_departments, "department_id"),
        ("category_ids", client_categories, "category_id"),
    ):
        if name in clean:
            await session.execute(delete(table).where(table.c.client_id == client_id))
            if clean[name]:
                await session.execute(
                    insert(table), [{"client_id": client_id, column: pk} for pk in clean[name]]
                )
    for definition_id, value in clean.get("custom_fields", {}).items():
        await session.execute(
            delete(CustomFieldValue).where(
                CustomFieldValue.client_id == client_id,
                CustomFieldValue.definition_id == definition_id,
            )
        )
        if value is not None:
            session.add(
                CustomFieldValue(client_id=client_id, definition_id=definition_id, value=value)
            )
    await session.flush()  # the session does not autoflush; snapshots read these rows back


async def create_client(
    session: AsyncSession,
    *,
    actor: Actor,
    values: dict[str, Any],
    password: CheckedPassword,
    cabinet_base_url: str,
    link_valid_for: timedelta,
) -> Client:
    """Open an account: login, password (checked by `prepare_password`), currency and a
    contact are required."""
    if not actor.is_admin and values.get("manager_id") is None:
        values = {**values, "manager_id": actor.staff_id}  # a manager's new client is theirs
    async with transaction(session):
        if values.get("parent_id") is not None:
            # the parent's row is locked before its rules are read (currency, not a
            # sub-account, exists): a concurrent change or deletion of it waits
            await lock_clients(session, [values["parent_id"]])
        clean = await _clean(session, values, current=None, actor=actor, password=password)
        related = ("department_ids", "category_ids", "custom_fields")
        columns: dict[str, Any] = {
            "status": ClientStatus.ACTIVE,
            "balance": Decimal(0),
            "credit_limit": Decimal(0),
            "price_adjustment_percent": Decimal(0),
            "moderation": False,
            **{k: v for k, v in clean.items() if k not in related and v is not None},
        }
        assert password.hash is not None  # a password with errors was refused above
        client = Client(
            **columns,
            password_hash=password.hash,
            created_at=actor.now,
            updated_at=actor.now,
        )
        session.add(client)
        try:
            await session.flush()
        except IntegrityError:
            raise DomainError(ErrorCode.LOGIN_TAKEN, "The login is taken", ["login"]) from None
        await _write_related(session, client.id, clean)
        if values.get("send_login_details"):
            await send_login_details(
                session,
                client=client,
                now=actor.now,
                cabinet_base_url=cabinet_base_url,
                valid_for=link_valid_for,
            )
        await audit.record(
            session,
            actor=actor,
            action="client.create",
            target_type="Client",
            target_id=client.id,
            target_label=client.login,
            after={
                **audit.client_snapshot(client),
                **await _related(session, client.id),
                "login_details_sent": bool(values.get("send_login_details")),
            },
        )
    return client


async def update_client(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    values: dict[str, Any],
    expected_version: int | None = None,
) -> Client:
    """Change the given fields; fields not given stay; None clears an optional one. The rules
    (currency, credit limit vs debt) are decided on the client's locked row."""
    unknown = set(values) - EDITABLE
    if unknown:
        raise ValueError(f"not editable here: {sorted(unknown)}")
    async with transaction(session):
        # Locked first: a payment, a link or a deletion of this client waits for this change,
        # and this change sees the balance, entries and links they left.
        client = await client_for_change(
            session, actor=actor, client_id=client_id, expected_version=expected_version
        )
        clean = await _clean(session, values, current=client, actor=actor)
        before = {**audit.client_snapshot(client), **await _related(session, client.id)}
        for name, new in clean.items():
            if name not in ("department_ids", "category_ids", "custom_fields"):
                setattr(client, name, new)
        await _write_related(session, client.id, clean)
        after = {**audit.client_snapshot(client), **await _related(session, client.id)}
        old, new_values = audit.changed(
            {k: v for k, v in before.items() if k != "updated_at"},
            {k: v for k, v in after.items() if k != "updated_at"},
        )
        if new_values:
            client.updated_at = actor.now
            try:
                await session.flush()
            except IntegrityError:
                raise DomainError(ErrorCode.LOGIN_TAKEN, "The login is taken", ["login"]) from None
            await audit.record(
                session,
                actor=actor,
                action="client.update",
                target_type="Client",
                target_id=client.id,
                target_label=client.login,
                before=old,
                after=new_values,
            )
    return client


async def change_password(
    session: AsyncSession, *, actor: Actor, client_id: int, password: CheckedPassword
) -> Client:
    """Set a new password for the client (audited, without the password)."""
    client = await client_for_change(session, actor=actor, client_id=client_id)
    if password.errors:
        raise ValidationFailed(password.errors)
    assert password.hash is not None
    async with transaction(session):
        client.password_hash = password.hash
        client.updated_at = actor.now
        await audit.record(
            session,
            actor=actor,
            action="client.password_change",
            target_type="Client",
            target_id=client.id,
            target_label=client.login,
        )
    return client


async def reset_avatar(session: AsyncSession, *, actor: Actor, client_id: int) -> Client:
    """Go back to the default avatar."""
    client = await client_for_change(session, actor=actor, client_id=client_id)
    async with transaction(session):
        if client.avatar_url is not None:
            await audit.record(
                session,
                actor=actor,
                action="client.avatar_reset",
                target_type="Client",
                target_id=client.id,
                target_label=client.login,
                before={"avatar_url": client.avatar_url},
                after={"avatar_url": None},
            )
            client.avatar_url = None
            client.updated_at = actor.now
    return client


async def _clients_for_bulk(
    session: AsyncSession, actor: Actor, ids: Sequence[int], checks: Checks
) -> list[Client]:
    if not ids:
        checks.add(ErrorCode.REQUIRED, "Select at least one client", ["ids"])
    if len(ids) > MAX_BULK:
        checks.add(ErrorCode.TOO_MANY, f"At most {MAX_BULK} clients at a time", ["ids"])
        return []
    found = await lock_clients(session, ids)
    clients: list[Client] = []
    for n, pk in enumerate(ids):
        if pk not in found:
            checks.add(ErrorCode.NOT_FOUND, "No such client", ["ids", str(n)])
        elif found[pk] not in clients:
            clients.append(found[pk])
    allowed = await may_change(session, actor, clients)
    refused = [client for client, ok in zip(clients, allowed, strict=True) if not ok]
    if refused:
        logins = ", ".join(client.login for client in refused[:5])
        raise PermissionDenied(
            f"Managers change only their own clients and their sub-accounts: not {logins}"
            + (f" and {len(refused) - 5} more" if len(refused) > 5 else ""),
            Denial.NOT_YOUR_CLIENT,
            [["ids", str(ids.index(client.id))] for client in refused],
        )
    return clients


async def set_status(
    session: AsyncSession, *, actor: Actor, ids: Sequence[int], status: ClientStatus
) -> list[Client]:
    """Enable or disable the selected clients: all of them, or none if any cannot be."""
    async with transaction(session):
        checks = Checks()
        clients = await _clients_for_bulk(session, actor, ids, checks)
        checks.raise_if_any()
        for client in clients:
            if client.status is status:
                continue
            await audit.record(
                session,
                actor=actor,
                action="client.status_change",
                target_type="Client",
                target_id=client.id,
                target_label=client.login,
                before={"status": client.status},
                after={"status": status},
            )
            client.status = status
            client.updated_at = actor.now
    return clients


async def archive_client(session: AsyncSession, *, actor: Actor, client: Client) -> None:
    """Move a client the caller has locked (and found deletable) to `deleted_clients`, with
    its snapshot, in the caller's transaction; sub-accounts go before their parents."""
    ledger = (
        await session.execute(
            select(
                func.count().label("entries"),
                func.coalesce(func.sum(CreditEntry.amount), 0).label("sum"),
            ).where(CreditEntry.client_id == client.id)
        )
    ).one()
    snapshot = {
        **audit.client_snapshot(client),
        **await _related(session, client.id),
        "connections": [
            {"type": c.type, "status": c.status}
            for c in await session.scalars(
                select(ClientConnection).where(ClientConnection.client_id == client.id)
            )
        ],
        "ledger": ledger._asdict(),
    }
    await audit.record(
        session,
        actor=actor,
        action="client.delete",
        target_type="Client",
        target_id=client.id,
        target_label=client.login,
        before=snapshot,
    )
    session.add(
        DeletedClient(
            id=client.id,
            login=client.login,
            deleted_at=actor.now,
            deleted_by_id=actor.staff_id,
            snapshot=audit.json_safe(snapshot),
            password_hash=client.password_hash,
        )
    )
    await session.flush()
    await session.execute(delete(Client).where(Client.id == client.id))


async def delete_clients(
    session: AsyncSession, *, actor: Actor, ids: Sequence[int], confirm: bool
) -> list[int]:
    """Delete the selected clients, keeping their ledgers: each moves to `deleted_clients` with
    a full snapshot (in the audit log too), and its id is never given to another client.

    Refused, naming each, while a client has a non-zero balance or sub-accounts that stay;
    one refusal deletes nothing. Decided on the clients' rows locked in this transaction."""
    async with transaction(session):
        checks = Checks()
        if not confirm:
            checks.add(
                ErrorCode.CONFIRMATION_REQUIRED,
                "Deleting removes the clients from every list (restorable until they are "
                "purged): pass confirm: true",
                ["confirm"],
            )
        # Locked in id order: a payment, link or change of these clients waits for this
        # deletion (and then finds them gone), or this deletion sees what it left.
        clients = await _clients_for_bulk(session, actor, ids, checks)
        leaving = {c.id for c in clients}
        subs: dict[int, int] = {}
        if clients:
            # counted after the lock: a link locks its parent, so none is added meanwhile
            rows = await session.execute(
                select(Client.parent_id, func.count())
                .where(Client.parent_id.in_(leaving), Client.id.not_in(leaving))
                .group_by(Client.parent_id)
            )
            subs = {parent: n for parent, n in rows if parent is not None}
        for client in clients:
            where = ["ids", str(ids.index(client.id))]
            if client.balance != 0:
                checks.add(
                    ErrorCode.HAS_BALANCE,
                    f"{client.login} has a balance of "
                    f"{format_money(client.balance, client.currency)}",
                    where,
                )
            if subs.get(client.id):
                checks.add(
                    ErrorCode.HAS_SUB_ACCOUNTS,
                    f"{client.login} has {subs[client.id]} sub-accounts",
                    where,
                )
        checks.raise_if_any()
        # sub-accounts before their parents
        for client in sorted(clients, key=lambda c: c.parent_id is None):
            await archive_client(session, actor=actor, client=client)
    return [client.id for client in clients]


async def resend_login_details(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    cabinet_base_url: str,
    link_valid_for: timedelta,
) -> Client:
    """Send an existing client their login and a new set-password link; the links sent
    before stop working. Refused for a client without an e-mail address, and within a
    minute of the last login e-mail to the same client. Audited."""
    now = actor.now
    async with transaction(session):
        client = await client_for_change(session, actor=actor, client_id=client_id)
        if client.email is None:
            raise DomainError(
                ErrorCode.CONTACT_REQUIRED,
                f"{client.login} has no e-mail address to send login details to",
                ["id"],
            )
        last = await session.scalar(
            select(func.max(MailMessage.created_at)).where(
                MailMessage.client_id == client.id, MailMessage.kind == LOGIN_DETAILS
            )
        )
        if last is not None and now - last < LOGIN_DETAILS_PAUSE:
            wait = int((last + LOGIN_DETAILS_PAUSE - now).total_seconds()) + 1
            raise DomainError(
                ErrorCode.TOO_MANY_ATTEMPTS,
                f"Login details were sent to {client.login} moments ago; "
                f"try again in {wait} seconds",
                ["id"],
            )
        # the links sent before stop working: only the newest e-mail's does
        await session.execute(
            update(ClientPasswordToken)
            .where(
                ClientPasswordToken.client_id == client.id,
                ClientPasswordToken.used_at.is_(None),
                ClientPasswordToken.expires_at > now,
            )
            .values(expires_at=now)
        )
        await send_login_details(
            session,
            client=client,
            now=now,
            cabinet_base_url=cabinet_base_url,
            valid_for=link_valid_for,
            again=True,
        )
        await audit.record(
            session,
            actor=actor,
            action="client.login_details_send",
            target_type="Client",
            target_id=client.id,
            target_label=client.login,
            after={"email": client.email},
        )
    return client
