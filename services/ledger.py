"""The credit ledger: every change of a client's balance is an immutable entry.

One function per operation, each in one transaction: lock the client's row, check the input
against the locked row (its currency's minor units, package prices in it), claim the
idempotency key (a bad input claims nothing, as at Stripe), check the credit limit against
the locked balance, insert the entry in the locked currency, move the stored balance (and
validTill), write the audit entry, remember the response. A client deleted meanwhile is
NOT_FOUND.
"""

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy import Sequence as SqlSequence
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db import direct
from db.direct import Shaped
from db.enums import EntryKind, PaymentMethod
from db.models import (
    AuditEntry,
    Client,
    CreditEntry,
    CreditNoteLine,
    IdempotencyKey,
    Package,
    PackagePrice,
)
from db.session import transaction
from services import audit, idempotency
from services.actors import Actor
from services.clients import client_row_for_change
from services.errors import DomainError, ErrorCode
from services.money import MAX_AMOUNT, MAX_BALANCE, check_amount, format_money
from services.pricing import adjusted_price
from services.system_settings import billing_refusal
from services.validation import Checks, column_length, text

MAX_LINES = 100
MAX_QUANTITY = 10_000
# A comment or reason is kept on the entry and as the audit entry's reason: it fits both.
MAX_COMMENT = column_length(CreditEntry.comment, AuditEntry.reason)
MAX_REFERENCE = column_length(CreditEntry.payment_reference)
MAX_DESCRIPTION = column_length(CreditNoteLine.description)


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """A ledger entry's values as the operation wrote them (what the API shows of it)."""

    id: int
    client_id: int
    kind: EntryKind
    amount: Decimal
    currency: str
    balance_after: Decimal
    payment_method: PaymentMethod | None
    payment_reference: str | None
    comment: str | None
    reverses_id: int | None
    valid_till_set: datetime | None
    valid_till_before: datetime | None
    created_by_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Posted:
    """The entry an operation made (or made before, when `replayed`); `entry` holds what it
    wrote, so the answer needs no read after the commit (None for a replay)."""

    entry_id: int
    client_id: int
    replayed: bool = False
    entry: PostedEntry | None = None


@dataclass(frozen=True, slots=True)
class NoteLine:
    """A credit note line as given: a unit amount, or a package priced for the client."""

    description: str | None
    quantity: int
    unit_amount: Decimal | None = None
    package_id: int | None = None


@dataclass
class _Entry:
    """What an operation will post, once checked."""

    kind: EntryKind
    amount: Decimal
    payment_method: PaymentMethod | None = None
    payment_reference: str | None = None
    comment: str | None = None
    reverses_id: int | None = None
    valid_till: datetime | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    # the input that sets the amount, for an error about the balance it leads to
    amount_field: list[str] = field(default_factory=lambda: ["amount"])


# The ledger entries' ids: on PostgreSQL an entry's id is taken before it is written, so that
# the entry, its lines, the balance, the audit entry (and the idempotency key's response) that
# name it go in one statement.
ENTRY_IDS = SqlSequence("credit_entries_id_seq")


async def _post(
    session: AsyncSession,
    *,
    actor: Actor,
    operation: str,
    client_id: int,
    request: dict[str, Any],
    idempotency_key: str | None,
    build: Callable[[Client, Checks], Awaitable[_Entry]],
) -> Posted:
    """Lock, check the input, claim the key, check the limit, post, audit: one transaction.

    PostgreSQL: BEGIN, the row lock, the key's claim with its response (or the entry id's
    reservation), one statement writing the entry, its lines, the balance and the audit entry,
    COMMIT. SQLite: the same rules, a statement each."""
    checks = Checks()
    key = (
        checks.run(idempotency.check_key, idempotency_key, field=["idempotency_key"])
        if idempotency_key is not None
        else None
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    async with transaction(session):
        # The row lock comes first: concurrent operations on one client queue here, and every
        # rule below (currency, limit, validTill, that the client exists) reads the row as the
        # change before left it.
        client = await client_row_for_change(session, actor=actor, client_id=client_id)
        # The input is checked before the key is claimed: a retry of a bad request is told
        # what is wrong with it, not that the key is taken.
        entry = await build(client, checks)
        checks.raise_if_any()
        balance = client.balance + entry.amount
        # a refusal lets a retry of a request that went through be answered as it was
        refusal = billing_refusal(bool(client.billing_mode)) or balance_refusal(
            client, entry, balance
        )
        hashes = (
            idempotency.fingerprints(operation, {"client_id": client_id, **request})
            if key is not None
            else ()
        )
        write: dict[str, Any] = {
            "actor": actor,
            "operation": operation,
            "client": client,
            "entry": entry,
            "balance": balance,
        }
        if postgres and refusal is None:
            # one statement: the key claimed (its response naming the entry), and only if it
            # was, the entry, the balance and the audit entry
            claim = (
                idempotency.claim_parameters(
                    staff_id=actor.staff_id,
                    key=key,
                    operation=operation,
                    request_hashes=hashes,
                    now=actor.now,
                )
                if key is not None
                else None
            )
            written = await _write_in_one(session, claim=claim, **write)
            if written is not None:
                return Posted(written.id, client.id, entry=written)
        if key is not None:  # taken (or SQLite, or refused): a replay, a reuse, or ours now
            earlier = await idempotency.claim(
                session,
                staff_id=actor.staff_id,
                key=key,
                operation=operation,
                request_hashes=hashes,
                now=actor.now,
            )
            if earlier is not None:
                return Posted(earlier["entry_id"], earlier["client_id"], replayed=True)
        if refusal is not None:
            raise refusal
        if postgres:  # an expired key claimed afresh
            posted = await _write_in_one(session, claim=None, **write)
            assert posted is not None
        else:
            posted = await _write(session, **write)
        if key is not None:
            await idempotency.remember(
                session,
                staff_id=actor.staff_id,
                key=key,
                response={"entry_id": posted.id, "client_id": client.id},
            )
    return Posted(posted.id, client.id, entry=posted)


def balance_refusal(client: Any, entry: _Entry, balance: Decimal) -> DomainError | None:
    """Why the locked balance (or validTill) does not allow the entry, if it does not."""
    if abs(balance) > MAX_BALANCE:
        return DomainError(
            ErrorCode.AMOUNT_TOO_LARGE,
            f"This would take the balance to {format_money(balance, client.currency)}; "
            f"a balance stays within ±{format_money(MAX_BALANCE, client.currency)}",
            entry.amount_field,
        )
    if entry.amount < 0 and balance < -client.credit_limit:
        return DomainError(
            ErrorCode.CREDIT_LIMIT_EXCEEDED,
            f"This would take the balance to {format_money(balance, client.currency)}, below "
            f"the credit limit of {format_money(-client.credit_limit, client.currency)}",
            ["amount"],
        )
    if entry.kind is EntryKind.PAYMENT and entry.valid_till is not None:
        if client.valid_till is not None and entry.valid_till <= client.valid_till:
            return DomainError(
                ErrorCode.INVALID,
                f"A payment only extends access; it already lasts until "
                f"{client.valid_till:%Y-%m-%d %H:%M} UTC",
                ["valid_till"],
            )
    return None


ENTRY_COLUMNS = (
    "client_id",
    "kind",
    "amount",
    "currency",
    "balance_after",
    "payment_method",
    "payment_reference",
    "comment",
    "reverses_id",
    "valid_till_set",
    "valid_till_before",
    "created_by_id",
    "created_at",
)
AUDIT_COLUMNS = tuple(column.key for column in AuditEntry.__table__.columns if column.key != "id")


def _bound(table: Any, columns: Sequence[str], prefix: str) -> dict[str, Any]:
    """Each column's value as a bind parameter named `prefix` + the column's name."""
    return {name: bindparam(prefix + name, type_=table.c[name].type) for name in columns}


# The writes of an entry, built once (building a statement costs more than running it), run
# with `_parameters`: the entry, the client's balance, validTill and update time, and the audit
# entry.
INSERT_ENTRY = (
    insert(CreditEntry)
    .values(_bound(CreditEntry.__table__, ENTRY_COLUMNS, "entry_"))
    .returning(CreditEntry.id)
)
UPDATE_CLIENT = (
    update(Client)
    .where(Client.id == bindparam("client_id", type_=BigInteger))
    .values(_bound(Client.__table__, ("balance", "valid_till", "updated_at"), "client_"))
)
INSERT_AUDIT = insert(AuditEntry).values(_bound(AuditEntry.__table__, AUDIT_COLUMNS, "audit_"))


@functools.lru_cache(maxsize=64)
def _write_all(keyed: bool, lines: int) -> Select[Any]:
    """PostgreSQL: every write of an entry in one statement of data-modifying CTEs. The entry's
    id is the sequence's next value; `keyed`: first the idempotency key's claim, whose response
    names that id, and nothing else is written unless it was claimed (no row comes back)."""
    next_id = select(ENTRY_IDS.next_value().label("id")).cte("next_entry")
    entry_columns = _bound(CreditEntry.__table__, ENTRY_COLUMNS, "entry_")
    source = select(next_id.c.id, *entry_columns.values())
    change = UPDATE_CLIENT
    writes: list[Any] = []
    if keyed:
        claim = (
            idempotency.claim_statement(
                {"entry_id": next_id.c.id, "client_id": bindparam("client_id", type_=BigInteger)}
            )
            .returning(IdempotencyKey.id)
            .cte("claim")
        )
        claimed = exists(select(claim.c.id))
        source = source.where(claimed)
        change = change.where(claimed)
    written = (
        insert(CreditEntry)
        .from_select(["id", *entry_columns], source)
        .returning(CreditEntry.id)
        .cte("entry")
    )
    audit_columns = _bound(AuditEntry.__table__, AUDIT_COLUMNS, "audit_")
    # the audit entry's "after" names the entry
    audit_columns["after"] = audit_columns["after"].op("||")(
        func.jsonb_build_object("entry_id", written.c.id)
    )
    writes.append(change.returning(literal(1)).cte("write_client"))
    writes.append(
        insert(AuditEntry)
        .from_select(list(audit_columns), select(*audit_columns.values()).select_from(written))
        .returning(literal(1))
        .cte("write_audit")
    )
    if lines:
        line_columns = (
            "position",
            "description",
            "package_id",
            "quantity",
            "unit_amount",
            "amount",
        )
        rows = [
            select(
                written.c.id, *_bound(CreditNoteLine.__table__, line_columns, f"line{n}_").values()
            )
            for n in range(lines)
        ]
        writes.append(
            insert(CreditNoteLine)
            .from_select(["entry_id", *line_columns], union_all(*rows))
            .returning(literal(1))
            .cte("write_lines")
        )
    return select(written.c.id).add_cte(*writes)


@functools.lru_cache(maxsize=64)
def _shaped_write_all(keyed: bool, lines: int) -> Shaped:
    """`_write_all`, with its cache key worked out once."""
    return Shaped(_write_all(keyed, lines))


def entry_values(
    *, actor: Actor, operation: str, client: Any, entry: _Entry, balance: Decimal
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The entry's columns, the client's, the audit entry's (its "after" without the entry),
    for the locked `client` row (its balance as it is before the entry)."""
    valid_till_changes = entry.valid_till is not None and entry.valid_till != client.valid_till
    values: dict[str, Any] = {
        "client_id": client.id,
        "kind": entry.kind,
        "amount": entry.amount,
        "currency": client.currency,
        "balance_after": balance,
        "payment_method": entry.payment_method,
        "payment_reference": entry.payment_reference,
        "comment": entry.comment,
        "reverses_id": entry.reverses_id,
        "valid_till_set": entry.valid_till if valid_till_changes else None,
        "valid_till_before": client.valid_till if valid_till_changes else None,
        "created_by_id": actor.staff_id,
        "created_at": actor.now,
    }
    # validTill as the locked row has it, unless the entry moves it
    moved: dict[str, Any] = {
        "balance": balance,
        "valid_till": entry.valid_till if valid_till_changes else client.valid_till,
        "updated_at": actor.now,
    }
    recorded = audit.row_values(
        actor=actor,
        action=operation,
        target_type="Client",
        target_id=client.id,
        target_label=client.login,
        before={
            "balance": client.balance,
            **({"valid_till": client.valid_till} if valid_till_changes else {}),
        },
        after={
            "balance": balance,
            "entry_id": None,
            "kind": entry.kind,
            "amount": entry.amount,
            **({"valid_till": entry.valid_till} if valid_till_changes else {}),
        },
        reason=entry.comment,
    )
    return values, moved, recorded


def _parameters(
    client: Client, values: dict[str, Any], moved: dict[str, Any], recorded: dict[str, Any]
) -> dict[str, Any]:
    return {
        **{f"entry_{name}": value for name, value in values.items()},
        "client_id": client.id,
        **{f"client_{name}": value for name, value in moved.items()},
        **{f"audit_{name}": value for name, value in recorded.items()},
    }


def _already_reversed(entry: _Entry) -> DomainError | None:
    """After an IntegrityError: a concurrent reversal won (the unique reverses_id)."""
    if entry.reverses_id is None:
        return None
    return DomainError(
        ErrorCode.ALREADY_REVERSED, "This entry has already been reversed", ["entry_id"]
    )


async def _write_in_one(
    session: AsyncSession,
    *,
    claim: dict[str, Any] | None,
    actor: Actor,
    operation: str,
    client: Client,
    entry: _Entry,
    balance: Decimal,
) -> PostedEntry | None:
    """PostgreSQL: write the entry, its lines, the balance and the audit entry in one statement,
    with the idempotency key's `claim` first if given; None when the key was taken (nothing
    written then)."""
    values, moved, recorded = entry_values(
        actor=actor, operation=operation, client=client, entry=entry, balance=balance
    )
    parameters = _parameters(client, values, moved, recorded)
    if claim is not None:
        parameters.update(claim)
    # a credit note's lines make a statement of their own shape
    statement = _shaped_write_all(claim is not None, len(entry.lines))
    if entry.lines:
        for n, line in enumerate(entry.lines):
            parameters.update((f"line{n}_{name}", value) for name, value in line.items())
            parameters[f"line{n}_position"] = n
    connection = await session.connection()
    try:
        rows = await direct.write(connection, statement, parameters)
    except IntegrityError:
        if (refusal := _already_reversed(entry)) is None:
            raise
        raise refusal from None
    if not rows:
        return None
    return PostedEntry(id=rows[0][0], **values)


async def _write(
    session: AsyncSession,
    *,
    actor: Actor,
    operation: str,
    client: Client,
    entry: _Entry,
    balance: Decimal,
) -> PostedEntry:
    """SQLite: write the entry, its lines, the balance and the audit entry, one statement each."""
    values, moved, recorded = entry_values(
        actor=actor, operation=operation, client=client, entry=entry, balance=balance
    )
    connection = await session.connection()
    parameters = _parameters(client, values, moved, recorded)
    try:
        entry_id = (await connection.execute(INSERT_ENTRY, parameters)).scalar_one()
    except IntegrityError:
        if (refusal := _already_reversed(entry)) is None:
            raise
        raise refusal from None
    parameters["audit_after"] = {**recorded["after"], "entry_id": entry_id}
    await connection.execute(UPDATE_CLIENT, parameters)
    await connection.execute(INSERT_AUDIT, parameters)
    if entry.lines:
        lines = [
            {"entry_id": entry_id, "position": position, **line}
            for position, line in enumerate(entry.lines)
        ]
        await connection.execute(insert(CreditNoteLine), lines)
    return PostedEntry(id=entry_id, **values)


def _text(
    checks: Checks, value: str | None, name: str, maximum: int, required: bool = False
) -> str | None:
    return checks.run(text, value, field=[name], maximum=maximum, required=required)


def payment_entry(
    client: Any,
    checks: Checks,
    *,
    amount: Decimal,
    payment_method: PaymentMethod,
    payment_reference: str | None,
    comment: str | None,
    valid_till: datetime | None = None,
) -> _Entry:
    """A payment's entry checked against the locked client (its currency's minor units); the
    problems go to `checks` (creditAdd's rules, also each row's of a payment batch)."""
    checked = checks.run(check_amount, amount, client.currency, field=["amount"], positive=True)
    return _Entry(
        kind=EntryKind.PAYMENT,
        amount=checked or Decimal(0),
        payment_method=payment_method,
        payment_reference=_text(checks, payment_reference, "payment_reference", MAX_REFERENCE),
        comment=_text(checks, comment, "comment", MAX_COMMENT),
        valid_till=valid_till,
    )


async def add_credit(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    amount: Decimal,
    payment_method: PaymentMethod,
    payment_reference: str | None = None,
    comment: str | None = None,
    valid_till: datetime | None = None,
    idempotency_key: str | None = None,
) -> Posted:
    """A payment: amount > 0, with how it was paid; it may extend paid access (validTill)."""

    async def build(client: Client, checks: Checks) -> _Entry:
        return payment_entry(
            client,
            checks,
            amount=amount,
            payment_method=payment_method,
            payment_reference=payment_reference,
            comment=comment,
            valid_till=valid_till,
        )

    request = {
        "amount": amount,
        "payment_method": payment_method,
        "payment_reference": payment_reference,
        "comment": comment,
        "valid_till": valid_till,
    }
    return await _post(
        session,
        actor=actor,
        operation="credit.add",
        client_id=client_id,
        request=request,
        idempotency_key=idempotency_key,
        build=build,
    )


async def deduct(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    amount: Decimal,
    reason: str,
    idempotency_key: str | None = None,
) -> Posted:
    """Take money: amount > 0, recorded negative, with the reason; refused past the limit."""

    async def build(client: Client, checks: Checks) -> _Entry:
        checked = checks.run(check_amount, amount, client.currency, field=["amount"], positive=True)
        return _Entry(
            kind=EntryKind.DEDUCTION,
            amount=-(checked or Decimal(0)),
            comment=_text(checks, reason, "reason", MAX_COMMENT, required=True),
        )

    return await _post(
        session,
        actor=actor,
        operation="credit.deduct",
        client_id=client_id,
        request={"amount": amount, "reason": reason},
        idempotency_key=idempotency_key,
        build=build,
    )


async def create_credit_note(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: int,
    lines: Sequence[NoteLine],
    comment: str | None = None,
    idempotency_key: str | None = None,
) -> Posted:
    """A credit note: lines of either sign (a package taken back is negative); its total is one
    ledger entry, which may be negative too."""

    async def build(client: Client, checks: Checks) -> _Entry:
        if not 1 <= len(lines) <= MAX_LINES:
            checks.add(ErrorCode.INVALID, f"A credit note has 1 to {MAX_LINES} lines", ["lines"])
        package_ids = {line.package_id for line in lines if line.package_id is not None}
        prices: dict[int, tuple[str, Decimal]] = {}
        if package_ids:
            rows = await session.execute(
                select(Package.id, Package.name, PackagePrice.amount)
                .outerjoin(
                    PackagePrice,
                    (PackagePrice.package_id == Package.id)
                    & (PackagePrice.currency == client.currency),
                )
                .where(Package.id.in_(package_ids))
            )
            prices = {row.id: (row.name, row.amount) for row in rows}
        written: list[dict[str, Any]] = []
        for n, line in enumerate(lines):
            where = ["lines", str(n)]
            if line.quantity == 0:
                checks.add(ErrorCode.INVALID, "Quantity is not zero", [*where, "quantity"])
            elif abs(line.quantity) > MAX_QUANTITY:
                checks.add(
                    ErrorCode.OUT_OF_RANGE,
                    f"Quantity is at most {MAX_QUANTITY} either way",
                    [*where, "quantity"],
                )
            unit = line.unit_amount
            name = None
            if line.package_id is not None:
                if line.package_id not in prices:
                    checks.add(ErrorCode.NOT_FOUND, "No such package", [*where, "package_id"])
                    continue
                name, base = prices[line.package_id]
                if unit is None:
                    if base is None:
                        checks.add(
                            ErrorCode.NOT_FOUND,
                            f"The package has no price in {client.currency}; give unitAmount",
                            [*where, "unit_amount"],
                        )
                        continue
                    unit = adjusted_price(base, client.price_adjustment_percent, client.currency)
            if unit is None:
                checks.add(
                    ErrorCode.REQUIRED, "Give a unit amount or a package", [*where, "unit_amount"]
                )
                continue
            unit = checks.run(check_amount, unit, client.currency, field=[*where, "unit_amount"])
            description = checks.run(
                text,
                line.description or name,
                field=[*where, "description"],
                maximum=MAX_DESCRIPTION,
                required=True,
            )
            if unit is None or description is None:
                continue
            if abs(unit * line.quantity) > MAX_AMOUNT:
                checks.add(
                    ErrorCode.AMOUNT_TOO_LARGE,
                    f"Quantity x unit amount is at most {MAX_AMOUNT} either way",
                    where,
                )
                continue
            written.append(
                {
                    "description": description,
                    "package_id": line.package_id,
                    "quantity": line.quantity,
                    "unit_amount": unit,
                    "amount": unit * line.quantity,
                }
            )
        total = sum((line["amount"] for line in written), Decimal(0))
        if abs(total) > MAX_AMOUNT:
            checks.add(
                ErrorCode.AMOUNT_TOO_LARGE,
                f"The total is at most {MAX_AMOUNT} either way",
                ["lines"],
            )
        return _Entry(
            kind=EntryKind.CREDIT_NOTE,
            amount=total,
            comment=_text(checks, comment, "comment", MAX_COMMENT),
            lines=written,
            amount_field=["lines"],
        )

    request = {
        "lines": [
            [line.description, line.quantity, line.unit_amount, line.package_id] for line in lines
        ],
        "comment": comment,
    }
    return await _post(
        session,
        actor=actor,
        operation="credit.note",
        client_id=client_id,
        request=request,
        idempotency_key=idempotency_key,
        build=build,
    )


_REVERSALS = aliased(CreditEntry)
# A ledger entry and the id of its reversal, if any (built once).
ENTRY_AND_REVERSAL = select(
    CreditEntry,
    select(_REVERSALS.id)
    .where(_REVERSALS.reverses_id == CreditEntry.id)
    .scalar_subquery()
    .label("reversal_id"),
).where(CreditEntry.id == bindparam("entry_id", type_=BigInteger))


def _access_taken_back(original: CreditEntry, client: Client) -> datetime | None:
    """The validTill after reversing `original`: a payment that paid for access loses exactly
    the time it added (from the later of the old validTill and the payment's time), never to
    before the payment; None when there is nothing to take back."""
    if original.valid_till_set is None or client.valid_till is None:
        return None  # no extension, or access since made unlimited on purpose
    paid_at = original.created_at
    start = max(original.valid_till_before or paid_at, paid_at)
    granted = original.valid_till_set - start
    if granted <= timedelta(0):
        return None
    return max(client.valid_till - granted, paid_at)


async def reverse(
    session: AsyncSession,
    *,
    actor: Actor,
    entry_id: int,
    reason: str,
    idempotency_key: str | None = None,
) -> Posted:
    """Undo an incorrect entry exactly, once: a reversal of the opposite amount that points at
    it. A reversal cannot itself be reversed."""
    # the entry with its reversal's id: an entry never changes, and a reversal made after this
    # read fails at the unique reverses_id (ALREADY_REVERSED) when it is written
    found = (await session.execute(ENTRY_AND_REVERSAL, {"entry_id": entry_id})).first()
    if found is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such ledger entry", ["entry_id"])
    original, reversal = found[0], found[1]

    async def build(client: Client, checks: Checks) -> _Entry:
        if original.kind is EntryKind.REVERSAL:
            checks.add(ErrorCode.NOT_REVERSIBLE, "A reversal cannot be reversed", ["entry_id"])
        elif reversal is not None and not await idempotency.answered_with(  # a retry replays
            session, staff_id=actor.staff_id, key=idempotency_key, entry_id=reversal, now=actor.now
        ):
            checks.add(
                ErrorCode.ALREADY_REVERSED, "This entry has already been reversed", ["entry_id"]
            )
        elif original.amount == 0:
            checks.add(
                ErrorCode.NOT_REVERSIBLE, "A zero entry has nothing to reverse", ["entry_id"]
            )
        return _Entry(
            kind=EntryKind.REVERSAL,
            amount=-original.amount,
            reverses_id=original.id,
            valid_till=_access_taken_back(original, client),
            comment=_text(checks, reason, "reason", MAX_COMMENT, required=True),
            amount_field=["entry_id"],
        )

    return await _post(
        session,
        actor=actor,
        operation="credit.reverse",
        client_id=original.client_id,
        request={"entry_id": entry_id, "reason": reason},
        idempotency_key=idempotency_key,
        build=build,
    )
