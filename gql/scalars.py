"""Scalars and small value types shared by every domain."""

import decimal
from collections.abc import Mapping

import strawberry
from strawberry.types.scalar import ScalarDefinition

from services.money import quantum


def _parse_decimal(value: object) -> decimal.Decimal:
    if not isinstance(value, str):
        raise ValueError('Decimal values are strings, such as "12.50" (never JSON numbers)')
    try:
        return decimal.Decimal(value.strip())
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None


# Replaces Strawberry's built-in Decimal scalar (which accepts JSON numbers) in `schema.py`.
DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number sent and received as a string, such as "-12.50"; never a float.'
    ),
    serialize=str,
    parse_value=_parse_decimal,
)
SCALAR_MAP: Mapping[object, ScalarDefinition] = {decimal.Decimal: DECIMAL_SCALAR}


@strawberry.type(description="An amount of money in one currency.")
class Money:
    amount: decimal.Decimal = strawberry.field(
        description='The amount with exactly the currency\'s minor-unit decimals, e.g. "10.50".'
    )
    currency: str = strawberry.field(description='ISO 4217 code, e.g. "EUR".')

    @classmethod
    def of(cls, amount: decimal.Decimal, currency: str) -> "Money":
        return cls(amount=amount.quantize(quantum(currency)), currency=currency)
