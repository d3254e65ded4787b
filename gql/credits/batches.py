"""Payment batches: many payments in one request (a bank statement's import), each answered
on its own (services/payment_batches.py)."""

from decimal import Decimal
from typing import Annotated

import strawberry

from gql.clients.mutations import client_pk
from gql.context import Info
from gql.credits.mutations import KEY_DESCRIPTION, MONEY
from gql.credits.types import CreditEntry
from gql.enums import PaymentMethod
from gql.errors import UserError, attempt, user_errors
from services import payment_batches
from services.errors import DomainError
from services.payment_batches import MAX_PAYMENTS


@strawberry.input(description="One payment of a batch: creditAdd's input, with a key required.")
class CreditAddBatchItem:
    client_id: strawberry.ID = strawberry.field(description="The client.")
    amount: Decimal = strawberry.field(description="More than 0, in the client's currency.")
    payment_method: PaymentMethod = strawberry.field(description="How it was paid.")
    payment_reference: str | None = strawberry.field(
        default=None, description="Bank or processor reference (the statement line's, say)."
    )
    comment: str | None = strawberry.field(default=None, description="A note.")
    idempotency_key: str = strawberry.field(
        description="Required, unique within the batch (the statement line's id, say). "
        + KEY_DESCRIPTION
        + " A key used by creditAdd for the same payment replays here, and the other way round."
    )


@strawberry.input(description="Payments to record, each on its own.")
class CreditAddBatchInput:
    payments: list[CreditAddBatchItem] = strawberry.field(
        description=f"1 to {MAX_PAYMENTS:,} payments, applied in this order (several to one "
        "client chain their balanceAfter)."
    )


@strawberry.type(description="What became of one payment of a batch.")
class CreditAddBatchResult:
    index: int = strawberry.field(description="The payment's position in the input, from 0.")
    entry: CreditEntry | None = strawberry.field(
        description="The ledger entry made (or made before, for a replay); null if refused."
    )
    replayed: bool = strawberry.field(
        description="True when an earlier request with this idempotency key made the entry."
    )
    user_errors: list[UserError] = strawberry.field(
        description='Why this payment was refused (fields like ["input", "payments", "3", '
        '"amount"]); then it changed nothing, and the other payments are not affected.'
    )


@strawberry.type(description="The result of `creditAddBatch`.")
class CreditAddBatchPayload:
    results: list[CreditAddBatchResult] = strawberry.field(
        description="One per payment, in input order; empty when the batch itself was refused."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why the batch as a whole was refused: no payments, too many, or a value "
        "that cannot be read in any row (an amount that is not a decimal, a malformed ID "
        "— the field points at it); then `results` is empty and nothing changed."
    )


def _item(item: CreditAddBatchItem) -> payment_batches.BatchPayment:
    return payment_batches.BatchPayment(
        client_id=client_pk(item.client_id),
        amount=item.amount,
        payment_method=item.payment_method,
        payment_reference=item.payment_reference,
        comment=item.comment,
        idempotency_key=item.idempotency_key,
    )


@strawberry.type
class CreditBatchMutation:
    @strawberry.mutation(
        description=f"Record up to {MAX_PAYMENTS:,} payments at once (a bank statement's "
        "import): each by creditAdd's rules and with its own idempotency key, each answered "
        "on its own (a refused payment leaves the others applied). Sending the same batch "
        "again answers the same results, replayed.",
        permission_classes=MONEY,
    )
    async def credit_add_batch(
        self,
        info: Info,
        input: Annotated[CreditAddBatchInput, strawberry.argument(description="The payments.")],
    ) -> CreditAddBatchPayload:
        payments = input.payments
        try:  # before any other work: the batch's size
            payment_batches.check_size(len(payments))
        except DomainError as error:
            return CreditAddBatchPayload(results=[], user_errors=user_errors(error))
        results, errors = await attempt(
            info, payment_batches.add_payments, payments=[_item(item) for item in payments]
        )
        if results is None:
            return CreditAddBatchPayload(results=[], user_errors=errors)
        replays = [r.posted.entry_id for r in results if r.posted and r.posted.entry is None]
        rows = await info.context.loaders.credit_entry_by_id.load_many(replays)
        earlier = {row.id: row for row in rows if row is not None}
        answers = []
        for index, result in enumerate(results):
            posted = result.posted
            entry = None
            if posted is not None:
                found = posted.entry if posted.entry is not None else earlier.get(posted.entry_id)
                entry = CreditEntry.from_row(found) if found is not None else None
            answers.append(
                CreditAddBatchResult(
                    index=index,
                    entry=entry,
                    replayed=posted is not None and posted.replayed,
                    user_errors=[e for error in result.errors for e in user_errors(error)],
                )
            )
        return CreditAddBatchPayload(results=answers, user_errors=[])
