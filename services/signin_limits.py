"""Sign-in attempts throttled so that nobody can lock a staff member out from one address:
tightly per (address, account), per address across accounts (spraying), and per account
from every address with a much higher limit (a distributed attack is slowed, not free)."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.ratelimit import Rate, RateLimiter

LOGIN_WINDOW = timedelta(minutes=15)
# Hex digits of the address's digest in a pair's key: the key stays short plain text (the
# limiter keeps such keys as given), so an account's pairs share a prefix `unlock` can find.
ADDRESS_DIGITS = 20


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Attempts per LOGIN_WINDOW: from one address at one account, from one address at any
    account, and at one account from every address."""

    per_address_account: int
    per_address: int
    per_account: int


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def account_of(email: str) -> str:
    """The account an e-mail names, as the buckets know it: a digest of the e-mail as sign-in
    looks it up (whatever the caller sends, the key fits the limiter's column)."""
    return _digest(email.strip().lower())


def account_key(email: str) -> str:
    """The bucket of every attempt at the account."""
    return f"login:account:{account_of(email)}"


def pairs_prefix(email: str) -> str:
    """The start of the keys of the account's (address, account) buckets."""
    return f"login:pair:{account_of(email)}:"


def login_buckets(email: str, address: str, limits: LoginLimits) -> list[tuple[str, Rate]]:
    """The buckets an attempt takes from, in the order they are asked."""
    return [
        (
            pairs_prefix(email) + _digest(address)[:ADDRESS_DIGITS],
            Rate(limits.per_address_account, LOGIN_WINDOW),
        ),
        (f"login:address:{address}", Rate(limits.per_address, LOGIN_WINDOW)),
        (account_key(email), Rate(limits.per_account, LOGIN_WINDOW)),
    ]


async def take_login_attempt(
    limiter: RateLimiter, *, email: str, address: str, limits: LoginLimits, now: datetime
) -> int | None:
    """Count a sign-in attempt; the whole seconds to wait when one of its buckets is empty,
    else None. The buckets are asked in order and the first refusal stops: an address that
    spent its attempts at an account takes nothing more from the account's wider bucket."""
    for key, rate in login_buckets(email, address, limits):
        decision = await limiter.take(key, 1, rate, now, exact=True)
        if not decision.allowed:
            return decision.wait_seconds
    return None


async def unlock_account(limiter: RateLimiter, *, email: str) -> int:
    """Forget the account's sign-in buckets (its own and every address's at it); how many
    there were. Addresses' buckets across accounts stay."""
    return await limiter.forget(keys=[account_key(email)], prefixes=[pairs_prefix(email)])
