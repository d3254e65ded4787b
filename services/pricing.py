"""What a package costs a client: the base price adjusted by the client's percentage."""

from decimal import Decimal

from services.money import round_half_up

HUNDRED = Decimal(100)


def adjusted_price(base: Decimal, percent: Decimal, currency: str) -> Decimal:
    """base * (1 + percent / 100), rounded half-up to the currency's minor unit."""
    return round_half_up(base * (HUNDRED + percent) / HUNDRED, currency)
