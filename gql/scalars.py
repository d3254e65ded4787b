"""Scalars and small value types shared by every domain."""

import datetime
import decimal
from collections.abc import Mapping

import strawberry
from strawberry.types.scalar import ScalarDefinition

from services.money import WrittenDecimal, quantum


def _parse_decimal(value: object) -> decimal.Decimal:
    if not isinstance(value, str):
        raise ValueError('Decimal values are strings, such as "12.50" (never JSON numbers)')
    try:
        # Remembers the notation, so that rules can refuse "1e3" by name (see check_amount).
        return WrittenDecimal(value.strip())
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None


def _parse_datetime(value: object) -> datetime.datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime values are ISO 8601 strings")
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


# Replaces Strawberry's built-in Decimal scalar (which accepts JSON numbers) in `schema.py`.
DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number sent and received as a string, such as "-12.50"; never a float.'
    ),
    serialize=str,
    parse_value=_parse_decimal,
)
DATETIME_SCALAR_NAME = "DateTime"
DATETIME_SCALAR = strawberry.scalar(
    name=DATETIME_SCALAR_NAME,
    description='A moment in ISO 8601, e.g. "2026-06-01T12:00:00+00:00"; without an offset '
    "it is read as UTC. Always answered in UTC.",
    serialize=lambda value: value.isoformat(),
    parse_value=_parse_datetime,
)
SCALAR_MAP: Mapping[object, ScalarDefinition] = {
    decimal.Decimal: DECIMAL_SCALAR,
    datetime.datetime: DATETIME_SCALAR,
}


@strawberry.type(description="An amount of money in one currency.")
class Money:
    amount: decimal.Decimal = strawberry.field(
        description='The amount with exactly the currency\'s minor-unit decimals, e.g. "10.50".'
    )
    currency: str = strawberry.field(description='ISO 4217 code, e.g. "EUR".')

    @classmethod
    def of(cls, amount: decimal.Decimal, currency: str) -> "Money":
        return cls(amount=money_amount(amount, currency), currency=currency)


def money_amount(amount: decimal.Decimal, currency: str) -> decimal.Decimal:
    """An amount as the API shows it: with exactly the currency's minor-unit decimals."""
    return amount.quantize(quantum(currency))
