"""Amounts in a currency: its minor units, and rounding to them."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import get_currency_precision, get_territory_currencies

from services.errors import DomainError, ErrorCode


@lru_cache(maxsize=1)
def tender_currencies() -> frozenset[str]:
    """ISO 4217 codes that some country uses as legal tender today (CLDR data, via Babel):
    codes like XXX (no currency), XTS (testing) or XAU (gold) are not money for an account."""
    today = date.today()
    territories = [t for t in Locale("en").territories if isinstance(t, str) and t.isalpha()]
    return frozenset(
        code
        for territory in territories
        if len(territory) == 2
        for code in get_territory_currencies(territory, today, tender=True)
    )


@lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """Decimals the currency uses: 0 for JPY, 2 for EUR, 3 for KWD (CLDR data, via Babel)."""
    return int(get_currency_precision(currency))


@lru_cache(maxsize=512)
def quantum(currency: str) -> Decimal:
    """The smallest amount of `currency`: 1 for JPY, 0.01 for USD, 0.001 for KWD."""
    return Decimal(1).scaleb(-minor_units(currency))


def format_money(amount: Decimal, currency: str) -> str:
    """An amount for a message, with the currency's decimals: "10.50 EUR", "1500 JPY"."""
    return f"{amount.quantize(quantum(currency))} {currency}"


def round_half_up(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half-up (away from zero on .5) to the currency's minor unit."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


MAX_AMOUNT = Decimal("1000000000000")  # 10^12 in any currency, per amount
# How far a balance may go either way. The Amount column holds 15 integer digits on
# PostgreSQL and 9.2 * 10^14 on SQLite (a 64-bit count of 10^-4 units); a hundred times the
# largest single amount stays well inside both.
MAX_BALANCE = Decimal("100000000000000")  # 10^14
STORED_DECIMALS = 4  # the Amount column's scale


class WrittenDecimal(Decimal):
    """A Decimal that remembers how the caller wrote it, so that "1e3" can be refused."""

    written: str

    def __new__(cls, written: str) -> "WrittenDecimal":
        value = super().__new__(cls, written)
        value.written = written
        return value


def check_amount(
    value: Decimal,
    currency: str,
    *,
    field: list[str],
    positive: bool = False,
    maximum: Decimal = MAX_AMOUNT,
) -> Decimal:
    """An amount exactly as given, if `currency` can hold it: finite, plain notation, no more
    decimals than the currency's minor units, within ±maximum (and > 0 if `positive`)."""
    if not value.is_finite():
        raise DomainError(ErrorCode.INVALID_AMOUNT, "Not a number", field)
    if "e" in getattr(value, "written", "").lower():
        raise DomainError(ErrorCode.INVALID_AMOUNT, "Write amounts without an exponent", field)
    if abs(value) > maximum:
        raise DomainError(ErrorCode.AMOUNT_TOO_LARGE, f"At most {maximum} {currency}", field)
    if positive and value <= 0:
        raise DomainError(ErrorCode.AMOUNT_NOT_POSITIVE, "Must be more than zero", field)
    if value != value.quantize(quantum(currency)):
        units = minor_units(currency)
        allowed = "no decimals" if units == 0 else f"at most {units} decimals"
        raise DomainError(
            ErrorCode.INVALID_AMOUNT_PRECISION, f"{currency} amounts have {allowed}", field
        )
    return value


def check_stored_amount(value: Decimal, *, field: list[str]) -> Decimal:
    """An amount to compare with stored ones (a filter's bound, say): finite, within
    ±MAX_BALANCE, with at most the column's 4 decimals; OUT_OF_RANGE otherwise."""
    if (
        not value.is_finite()
        or abs(value) > MAX_BALANCE
        or value != value.quantize(Decimal(1).scaleb(-STORED_DECIMALS))
    ):
        raise DomainError(
            ErrorCode.OUT_OF_RANGE,
            f"Amounts here are numbers within ±{MAX_BALANCE} with at most "
            f"{STORED_DECIMALS} decimals",
            field,
        )
    return value
