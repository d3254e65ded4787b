"""Scalars and small value types shared by every domain."""

import datetime
import decimal
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from strawberry.types.scalar import ScalarDefinition

from services.errors import ErrorCode
from services.money import quantum
from services.validation import quoted

# Plain notation only: ASCII digits, an optional sign and fraction; no exponent, no spaces,
# no "_" separators, no other digits (Python's Decimal() reads all of those).
PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]{1,40}(?:\.[0-9]{1,40})?")


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An input value a scalar or enum could not read. It reaches the resolver in place of
    the value, where gql/arguments.py reports it on its own path (a mutation's userError, or
    one BAD_USER_INPUT error listing every such value of a query), instead of graphql-core
    refusing the whole request at its first bad value."""

    code: ErrorCode
    message: str


def _parse_decimal(value: object) -> decimal.Decimal | Unreadable:
    if not isinstance(value, str):
        return Unreadable(
            ErrorCode.INVALID_AMOUNT,
            'Decimal values are strings, such as "12.50" (never JSON numbers)',
        )
    if not PLAIN_DECIMAL.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return Unreadable(
            ErrorCode.INVALID_AMOUNT,
            f"{shown!r} is not a decimal number: write digits with an optional sign and "
            'decimal point, such as "-12.50" (no exponent, spaces or separators)',
        )
    return decimal.Decimal(value)


def readable(parse: Callable[[object], Any], code: ErrorCode) -> Callable[[object], Any]:
    """A scalar parser that answers Unreadable where `parse` raises ValueError."""

    def parse_or_flag(value: object) -> Any:
        try:
            return parse(value)
        except ValueError as error:
            return Unreadable(code, str(error))

    return parse_or_flag


# The moments a DateTime may name, in UTC: every database and every client can hold them,
# and an offset never carries one past the years Python's datetime has (1 to 9999).
EARLIEST = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
LATEST = datetime.datetime.max.replace(tzinfo=datetime.UTC)


def _parse_datetime(value: object) -> datetime.datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime values are ISO 8601 strings")
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{quoted(value)} is not an ISO 8601 date and time") from None
    try:
        moment = (
            parsed.astimezone(datetime.UTC)
            if parsed.tzinfo
            else parsed.replace(tzinfo=datetime.UTC)
        )
    except OverflowError:  # "0001-01-01T00:00:00+05:00" is in year 0 in UTC
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise ValueError(
            f"{quoted(value)} is out of range: DateTime values lie between "
            "1900-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z (in UTC)"
        )
    return moment


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
    "it is read as UTC. Between 1900-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z once "
    "converted to UTC; other moments are refused. Always answered in UTC.",
    serialize=lambda value: value.isoformat(),
    parse_value=readable(_parse_datetime, ErrorCode.INVALID_DATE),
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


def encode_response(data: Any) -> bytes:
    """A response body as JSON: orjson, or the standard library where orjson cannot (an
    integer beyond 64 bits in a JSON value written before values were checked)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, default=str, ensure_ascii=False).encode()
