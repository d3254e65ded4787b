"""Idempotency keys: a retry is told from another request by what it asks for, not by how it
is spelled; keys claimed before the canonical form keep replaying until they expire."""

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import PaymentMethod
from db.models import IdempotencyKey
from services import idempotency
from services.audit import json_safe
from services.errors import DomainError, ErrorCode
from services.money import WrittenDecimal
from tests.conftest import FakeClock
from tests.factories import Factory

PAYMENT: dict[str, Any] = {
    "client_id": 7,
    "amount": WrittenDecimal("12.50"),
    "payment_method": PaymentMethod.BANK_TRANSFER,
    "payment_reference": None,
    "comment": "March",
    "valid_till": datetime(2026, 7, 1, tzinfo=UTC),
}
PLUS_TWO = timezone(timedelta(hours=2))

# (changes to PAYMENT, the same request?)
SPELLINGS = [
    ({"amount": WrittenDecimal("12.5")}, True),
    ({"amount": WrittenDecimal("12.500")}, True),
    ({"amount": Decimal("1.25E+1")}, True),
    ({"amount": WrittenDecimal("12.51")}, False),
    ({"amount": WrittenDecimal("-12.50")}, False),
    ({"comment": " March\n"}, True),
    ({"comment": "march"}, False),
    ({"comment": "Mar ch"}, False),
    ({"payment_reference": ""}, True),
    ({"payment_reference": "0"}, False),
    ({"payment_method": "BANK_TRANSFER"}, True),
    ({"payment_method": PaymentMethod.CASH}, False),
    ({"valid_till": datetime(2026, 7, 1, 2, tzinfo=PLUS_TWO)}, True),
    ({"valid_till": datetime(2026, 7, 1, 2, tzinfo=UTC)}, False),
    ({"client_id": 8}, False),
]


@pytest.mark.parametrize(("changes", "same"), SPELLINGS)
def test_requests_are_compared_by_value(changes: dict[str, Any], same: bool) -> None:
    other = {**PAYMENT, **changes}
    assert (
        idempotency.fingerprint("credit.add", other)
        == idempotency.fingerprint("credit.add", PAYMENT)
    ) is same


def test_order_of_keys_does_not_count_and_of_lines_does() -> None:
    reordered = dict(reversed(list(PAYMENT.items())))
    assert idempotency.fingerprint("credit.add", reordered) == idempotency.fingerprint(
        "credit.add", PAYMENT
    )
    lines = [["Fee", 1, Decimal("1.5"), None], ["Refund", -1, Decimal("2"), 3]]
    assert idempotency.fingerprint("credit.note", {"lines": lines}) == idempotency.fingerprint(
        "credit.note",
        {"lines": [["Fee ", 1, Decimal("1.50"), None], ["Refund", -1, Decimal("2.00"), 3]]},
    )
    assert idempotency.fingerprint("credit.note", {"lines": lines}) != idempotency.fingerprint(
        "credit.note", {"lines": lines[::-1]}
    )
    assert idempotency.fingerprint("credit.add", PAYMENT) != idempotency.fingerprint(
        "credit.deduct", PAYMENT
    )


def spelled(operation: str, request: dict[str, Any]) -> str:
    """The digest keys were stored with before the canonical form (the code of that time)."""
    canonical = orjson.dumps([operation, json_safe(request)], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def test_a_key_claimed_before_the_canonical_form_replays_until_it_expires(
    session: AsyncSession, factory: Factory, clock: FakeClock
) -> None:
    # given a key claimed by a payment before the upgrade, with the hash of its spelling
    staff = await factory.staff()
    session.add(
        IdempotencyKey(
            staff_id=staff.id,
            key="pay-1",
            operation="credit.add",
            request_hash=spelled("credit.add", PAYMENT),
            response={"entry_id": 1, "client_id": 7},
            created_at=clock(),
            expires_at=clock() + idempotency.KEEP_FOR,
        )
    )
    await session.commit()

    async def claim(request: dict[str, Any]) -> dict[str, Any] | None:
        return await idempotency.claim(
            session,
            staff_id=staff.id,
            key="pay-1",
            operation="credit.add",
            request_hashes=idempotency.fingerprints("credit.add", request),
            now=clock(),
        )

    # when the same request is retried after it, it replays
    assert await claim(PAYMENT) == {"entry_id": 1, "client_id": 7}
    # and another is refused
    with pytest.raises(DomainError) as refused:
        await claim({**PAYMENT, "amount": WrittenDecimal("13.00")})
    assert refused.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSED
    # and once it expired, the key is claimed afresh, with the current form's hash
    clock.advance(idempotency.KEEP_FOR)
    assert await claim(PAYMENT) is None
    stored = await session.scalar(
        select(IdempotencyKey.request_hash).where(IdempotencyKey.key == "pay-1")
    )
    assert stored == idempotency.fingerprint("credit.add", PAYMENT)
