"""Moving money: payments, deductions, credit notes and reversals, each exactly once."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from db.enums import Scope
from gql.clients.inputs import NO_ROW
from gql.clients.mutations import client_pk
from gql.clients.types import Client, client_from_row
from gql.context import Info
from gql.credits.types import CreditEntry
from gql.enums import PaymentMethod
from gql.errors import UserError, attempt
from gql.node import pk_of
from gql.permissions import HasScope
from services import ledger

KEY_DESCRIPTION = (
    "Any unique string (a UUID, say). A retry with the same key and the same input applies "
    "once and answers `replayed: true`; the same key with another input is refused. Inputs "
    'are compared by value ("12.5" is "12.50"; spaces around texts do not count). Kept 24 h.'
)


async def payload_client(root: "CreditEntryPayload", info: Info) -> Client | None:
    """The client as it is after the change: read only when asked for."""
    if root.client_id is None:
        return None
    row = await info.context.loaders.client_by_id.load(root.client_id)
    return client_from_row(info, row) if row is not None else None


@strawberry.type(description="The result of a money mutation.")
class CreditEntryPayload:
    entry: CreditEntry | None = strawberry.field(
        description="The ledger entry made (or made before, for a replay); null if refused."
    )
    client: Client | None = strawberry.field(
        resolver=payload_client,
        description="The client as it is now (needs clients:read).",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    replayed: bool = strawberry.field(
        description="True when an earlier request with this idempotency key made the entry."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why it was refused; then nothing changed."
    )
    client_id: strawberry.Private[int | None] = None


@strawberry.input(description="A payment received from a client.")
class CreditAddInput:
    client_id: strawberry.ID = strawberry.field(description="The client.")
    amount: Decimal = strawberry.field(description="More than 0, in the client's currency.")
    payment_method: PaymentMethod = strawberry.field(description="How it was paid.")
    payment_reference: str | None = strawberry.field(
        default=None, description="Bank or processor reference."
    )
    comment: str | None = strawberry.field(default=None, description="A note.")
    valid_till: datetime | None = strawberry.field(
        default=None,
        description="Billing mode: the payment buys access until this time; it must be later "
        "than the client's current validTill (a payment never shortens access).",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=KEY_DESCRIPTION)


@strawberry.input(description="Money taken from a client.")
class CreditDeductInput:
    client_id: strawberry.ID = strawberry.field(description="The client.")
    amount: Decimal = strawberry.field(description="More than 0; recorded as negative.")
    reason: str = strawberry.field(description="Why (required).")
    idempotency_key: str | None = strawberry.field(default=None, description=KEY_DESCRIPTION)


@strawberry.input(description="A credit note line: quantity x unit amount, either may be negative.")
class CreditNoteLineInput:
    description: str | None = strawberry.field(
        default=None, description="What it is for (default: the package's name)."
    )
    quantity: int = strawberry.field(default=1, description="Not zero; -1 takes a package back.")
    unit_amount: Decimal | None = strawberry.field(
        default=None,
        description="Price of one unit; with a package and no amount, the client's price for it.",
    )
    package_id: strawberry.ID | None = strawberry.field(default=None, description="A package.")


@strawberry.input(description="A credit note for a client; its total is one ledger entry.")
class CreditNoteCreateInput:
    client_id: strawberry.ID = strawberry.field(description="The client.")
    lines: list[CreditNoteLineInput] = strawberry.field(description="1 to 100 lines.")
    comment: str | None = strawberry.field(default=None, description="A note.")
    idempotency_key: str | None = strawberry.field(default=None, description=KEY_DESCRIPTION)


async def entry_payload(
    info: Info, posted: ledger.Posted | None, errors: list[UserError]
) -> CreditEntryPayload:
    """The answer: the entry as the service wrote it (read only for a replay); the client is
    read only when asked for."""
    if posted is None:
        return CreditEntryPayload(entry=None, replayed=False, user_errors=errors)
    entry: CreditEntry | None
    if posted.entry is not None:
        entry = CreditEntry.from_row(posted.entry)
    else:
        row = await info.context.loaders.credit_entry_by_id.load(posted.entry_id)
        entry = CreditEntry.from_row(row) if row is not None else None
    return CreditEntryPayload(
        entry=entry, replayed=posted.replayed, user_errors=errors, client_id=posted.client_id
    )


MONEY = [HasScope(Scope.CREDITS_WRITE)]
CLIENT_IN_INPUT = {"id": ("input", "clientId")}


@strawberry.type
class CreditMutation:
    @strawberry.mutation(
        description="Record a payment (Add Credits): the balance goes up by `amount`.",
        permission_classes=MONEY,
    )
    async def credit_add(
        self,
        info: Info,
        input: Annotated[CreditAddInput, strawberry.argument(description="The payment.")],
    ) -> CreditEntryPayload:
        posted, errors = await attempt(
            info,
            ledger.add_credit,
            paths=CLIENT_IN_INPUT,
            client_id=client_pk(input.client_id),
            amount=input.amount,
            payment_method=input.payment_method,
            payment_reference=input.payment_reference,
            comment=input.comment,
            valid_till=input.valid_till,
            idempotency_key=input.idempotency_key,
        )
        return await entry_payload(info, posted, errors)

    @strawberry.mutation(
        description="Take money from the balance; refused if it would go below -creditLimit.",
        permission_classes=MONEY,
    )
    async def credit_deduct(
        self,
        info: Info,
        input: Annotated[CreditDeductInput, strawberry.argument(description="The deduction.")],
    ) -> CreditEntryPayload:
        posted, errors = await attempt(
            info,
            ledger.deduct,
            paths=CLIENT_IN_INPUT,
            client_id=client_pk(input.client_id),
            amount=input.amount,
            reason=input.reason,
            idempotency_key=input.idempotency_key,
        )
        return await entry_payload(info, posted, errors)

    @strawberry.mutation(
        description="A credit note with lines of either sign (negative packages included); its "
        "total moves the balance, and a negative total is refused past the credit limit.",
        permission_classes=MONEY,
    )
    async def credit_note_create(
        self,
        info: Info,
        input: Annotated[CreditNoteCreateInput, strawberry.argument(description="The note.")],
    ) -> CreditEntryPayload:
        lines = [
            ledger.NoteLine(
                description=line.description,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                package_id=(pk_of(line.package_id, "Package") or NO_ROW)
                if line.package_id
                else None,
            )
            for line in input.lines
        ]
        posted, errors = await attempt(
            info,
            ledger.create_credit_note,
            # a note's amount is its lines' total
            paths={**CLIENT_IN_INPUT, "amount": ("input", "lines")},
            client_id=client_pk(input.client_id),
            lines=lines,
            comment=input.comment,
            idempotency_key=input.idempotency_key,
        )
        return await entry_payload(info, posted, errors)

    @strawberry.mutation(
        description="Undo an incorrect entry (a payment, say) exactly, once, with an entry of "
        "the opposite amount that points at it. Reversals cannot be reversed.",
        permission_classes=MONEY,
    )
    async def credit_entry_reverse(
        self,
        info: Info,
        entry_id: Annotated[strawberry.ID, strawberry.argument(description="The entry to undo.")],
        reason: Annotated[str, strawberry.argument(description="Why (required).")],
        idempotency_key: Annotated[
            str | None, strawberry.argument(description=KEY_DESCRIPTION)
        ] = None,
    ) -> CreditEntryPayload:
        arguments: dict[str, Any] = {
            "entry_id": pk_of(entry_id, "CreditEntry") or NO_ROW,
            "reason": reason,
            "idempotency_key": idempotency_key,
        }
        # the service speaks of the reversal's amount and entry: both are `entryId` here
        paths = {"amount": ("entryId",), "id": ("entryId",)}
        posted, errors = await attempt(info, ledger.reverse, prefix=(), paths=paths, **arguments)
        return await entry_payload(info, posted, errors)
