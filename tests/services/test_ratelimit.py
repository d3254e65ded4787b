"""Rate limits: token buckets shared through Redis or the database, 429 when empty, and
sign-in attempts throttled per address and account, per address and per account (aliases
count) so that no single address can lock an account."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from clientdesk.settings import Settings
from db.enums import StaffRole
from db.models import ApiToken, RateLimitBucket
from db.session import SharedSession, create_engine, create_sessionmaker
from gql.app import create_app
from services.auth import token_digest
from services.ratelimit import (
    LEASE_FOR,
    LEASE_SHARE,
    LONGEST_PERIOD,
    SWEEP_EVERY,
    DatabaseRateLimiter,
    Decision,
    Rate,
    RateLimiter,
    RedisRateLimiter,
    forget_full_buckets,
    whole_seconds,
)
from services.signin_limits import unlock_account
from tests.api import GraphQLClient, error_codes
from tests.conftest import POSTGRES_URL, FakeClock
from tests.factories import Factory

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["redis", "database"])
async def limiter(
    request: pytest.FixtureRequest, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[RateLimiter]:
    if request.param == "redis":
        limiter: RateLimiter = RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    else:
        limiter = DatabaseRateLimiter(sessionmaker)
    yield limiter
    if isinstance(limiter, RedisRateLimiter):
        keys = [key async for key in limiter.redis.scan_iter(f"{limiter.prefix}*")]
        if keys:
            await limiter.redis.delete(*keys)
    await limiter.close()


async def test_token_bucket(limiter: RateLimiter, clock: FakeClock) -> None:
    rate = Rate(10, timedelta(minutes=1))  # 10 points, one back every 6 seconds
    first = await limiter.take("k", 7, rate, clock())
    assert (first.allowed, first.remaining) == (True, 3)
    refused = await limiter.take("k", 5, rate, clock())
    assert refused.allowed is False
    assert refused.retry_after == pytest.approx(12.0)  # 2 more points: 12 seconds
    clock.advance(timedelta(seconds=12))
    assert (await limiter.take("k", 5, rate, clock())).allowed is True
    clock.advance(timedelta(hours=1))  # never more than the capacity
    full = await limiter.take("k", 1, rate, clock())
    assert full.remaining == 9
    other = await limiter.take("another", 10, rate, clock())
    assert other.allowed is True


async def test_concurrent_asks_for_one_bucket_are_decided_in_order_in_fewer_calls(
    clock: FakeClock,
) -> None:
    # given a Redis bucket of 10 points
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    rate = Rate(10, timedelta(minutes=1))
    await limiter.take("warm", 1, rate, clock())  # loads the script into Redis
    counted = CountedScript(limiter.script)
    limiter.script = counted  # type: ignore[assignment]  # counts, then calls it
    try:
        # when 8 requests ask for 2 points each at once
        decisions = await asyncio.gather(
            *(limiter.take("busy", 2, rate, clock()) for _ in range(8))
        )
        calls = counted.calls
        # and then another, alone
        after = await limiter.take("busy", 1, rate, clock())
    finally:
        await limiter.redis.delete(f"{limiter.prefix}busy", f"{limiter.prefix}warm")
        await limiter.close()
    # then each got what it would have got alone, in order
    assert [(d.allowed, d.remaining) for d in decisions] == [
        (True, 8),
        (True, 6),
        (True, 4),
        (True, 2),
        (True, 0),
        (False, 0),
        (False, 0),
        (False, 0),
    ]
    assert decisions[-1].retry_after == pytest.approx(12.0)
    # in two calls: the first, and the seven that waited for it
    assert calls == 2
    assert (after.allowed, after.remaining) == (False, 0)


async def test_several_buckets_are_asked_in_turn_and_a_refusal_stops_the_rest(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    # given a token bucket of 10 points and its owner's of 15
    token, owner = Rate(10, timedelta(minutes=1)), Rate(15, timedelta(minutes=1))
    buckets = [("token:1", token), ("staff:1", owner)]
    # when asks take 4 points from both
    first = await limiter.take_all(buckets, 4, clock())
    second = await limiter.take_all(buckets, 4, clock())
    assert [(d.allowed, d.remaining) for d in first] == [(True, 6), (True, 11)]
    assert [(d.allowed, d.remaining) for d in second] == [(True, 2), (True, 7)]
    # then the token refusing stops there: the owner's bucket is not charged
    refused = await limiter.take_all(buckets, 4, clock())
    assert [(d.allowed, d.remaining) for d in refused] == [(False, 2)]
    # and another token of the same owner spends the owner's 7 left, then the owner refuses
    # while that token's own bucket keeps the charge
    other = [("token:2", token), ("staff:1", owner)]
    assert all(d.allowed for d in await limiter.take_all(other, 7, clock()))
    over = await limiter.take_all(other, 1, clock())
    assert [(d.allowed, d.remaining) for d in over] == [(True, 2), (False, 0)]
    assert over[-1].retry_after == pytest.approx(4.0)  # one point at a quarter a second


async def test_a_requests_buckets_go_to_redis_in_one_call_and_concurrent_asks_share_it(
    clock: FakeClock,
) -> None:
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    token, owner = Rate(10, timedelta(minutes=1)), Rate(6, timedelta(minutes=1))
    buckets = [("token:1", token), ("staff:1", owner)]
    await limiter.take("warm", 1, token, clock())  # loads the script into Redis
    counted = CountedScript(limiter.script)
    limiter.script = counted  # type: ignore[assignment]  # counts, then calls it
    try:
        alone = await limiter.take_all(buckets, 1, clock())
        assert counted.calls == 1
        together = await asyncio.gather(*(limiter.take_all(buckets, 2, clock()) for _ in range(4)))
    finally:
        keys = [key async for key in limiter.redis.scan_iter(f"{limiter.prefix}*")]
        await limiter.redis.delete(*keys)
        await limiter.close()
    assert [(d.allowed, d.remaining) for d in alone] == [(True, 9), (True, 5)]
    # in order, as if alone: the owner's 5 points cover two asks, the third is refused by it
    # (the token keeps the charge) and the fourth too
    assert [[(d.allowed, d.remaining) for d in ask] for ask in together] == [
        [(True, 7), (True, 3)],
        [(True, 5), (True, 1)],
        [(True, 3), (False, 1)],
        [(True, 1), (False, 1)],
    ]
    assert counted.calls == 3  # the first, then the three that waited for it


class CountedScript:
    """A limiter's script, counting the calls this limiter makes (Redis's own command stats
    count every client's, and other programs may use the same Redis)."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.script(*args, **kwargs)


def refusals(limit: str) -> float:
    """The refusals /metrics reports (tests/gql/test_observability.py scrapes it)."""
    value = REGISTRY.get_sample_value("clientdesk_rate_limit_refusals_total", {"limit": limit})
    return value or 0.0


@pytest.fixture
def throttled_app(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
    limiter: RateLimiter,
) -> Any:
    """The app with tight limits: 30 points a minute per token; 3 sign-in attempts per
    address at an account, 5 per address, 8 per account, per 15 minutes."""
    tight = settings.model_copy(
        update={
            "rate_limit_points_per_minute": 30,
            "login_attempts_per_address_account": 3,
            "login_attempts_per_address": 5,
            "login_attempts_per_account": 8,
        }
    )
    return create_app(
        tight, engine=engine, sessionmaker=sessionmaker, clock=clock, rate_limiter=limiter
    )


@pytest.fixture
async def throttled_api(throttled_app: Any) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=throttled_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://clientdesk.test") as http:
        yield GraphQLClient(http)


# Opens a client of an app connecting from the address given.
From = Callable[[str], AbstractAsyncContextManager[GraphQLClient]]


def from_addresses(app: Any) -> From:
    """Clients of `app` that connect from the address given."""

    @asynccontextmanager
    async def at(address: str) -> AsyncIterator[GraphQLClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://clientdesk.test") as h:
            yield GraphQLClient(h)

    return at


@pytest.fixture
def signin_app(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
    limiter: RateLimiter,
) -> Any:
    """The app with the default sign-in limits (10 per address and account, 50 per address,
    100 per account, per 15 minutes)."""
    defaults = Settings(database_url=settings.database_url)
    limits = {
        name: getattr(defaults, name)
        for name in (
            "login_attempts_per_address_account",
            "login_attempts_per_address",
            "login_attempts_per_account",
        )
    }
    assert list(limits.values()) == [10, 50, 100]
    return create_app(
        settings.model_copy(update=limits),
        engine=engine,
        sessionmaker=sessionmaker,
        clock=clock,
        rate_limiter=limiter,
    )


async def test_each_token_has_a_budget_and_429_says_when_to_retry(
    throttled_api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    token = await factory.admin_token()
    other = await factory.admin_token()
    # 10 points per mutation: three fit in 30
    mutation = 'mutation { clientAvatarReset(id: "Q2xpZW50OjA=") { userErrors { code } } }'
    for left in (20, 10, 0):
        response = await throttled_api.post(mutation, token=token)
        assert response.status_code == 200
        status = response.json()["extensions"]["cost"]["throttleStatus"]
        assert status == {"maximumAvailable": 30, "currentlyAvailable": left, "restoreRate": 0.5}
    before = refusals("token")
    refused = await throttled_api.post(mutation, token=token)
    assert refused.status_code == 429
    assert refusals("token") == before + 1
    assert refused.headers["Retry-After"] == "20"  # 10 points at half a point a second
    assert error_codes(refused.json()["errors"]) == ["RATE_LIMITED"]
    assert refused.json()["data"] is None
    # another token is not affected; a small query costs one point
    assert (await throttled_api.post("{ viewer { name } }", token=other)).status_code == 200
    clock.advance(timedelta(seconds=20))
    assert (await throttled_api.post(mutation, token=token)).status_code == 200


async def test_a_fresh_token_does_not_escape_its_owners_budget(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
    limiter: RateLimiter,
    factory: Factory,
) -> None:
    # given 30 points a minute per token and 50 per staff user
    budgets = settings.model_copy(
        update={"rate_limit_points_per_minute": 30, "staff_rate_limit_points_per_minute": 50}
    )
    app = create_app(
        budgets, engine=engine, sessionmaker=sessionmaker, clock=clock, rate_limiter=limiter
    )
    admin = await factory.staff(role=StaffRole.ADMIN)
    first = await factory.token(admin)
    stranger = await factory.admin_token()
    mutation = 'mutation { clientAvatarReset(id: "Q2xpZW50OjA=") { userErrors { code } } }'
    mint = 'mutation { tokenCreate(input: {name: "fresh", scopes: [CLIENTS_WRITE]}) { token } }'
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://clientdesk.test") as http:
        api = GraphQLClient(http)
        # when the first token mints a fresh one and spends the rest of its own budget
        minted = await api.post(mint, token=first)
        assert minted.status_code == 200
        fresh = minted.json()["data"]["tokenCreate"]["token"]
        spent = minted.json()["extensions"]["cost"]["requestedQueryCost"]
        while spent + 10 <= 30:
            assert (await api.post(mutation, token=first)).status_code == 200
            spent += 10
        assert (await api.post(mutation, token=first)).status_code == 429
        # then the fresh token has only what is left of the owner's 50 points
        left = (50 - spent) // 10
        for _ in range(left):
            assert (await api.post(mutation, token=fresh)).status_code == 200
        refused = await api.post(mutation, token=fresh)  # its own bucket still holds 10
        assert refused.status_code == 429
        assert refused.json()["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 50
        # and another staff user is not affected
        assert (await api.post(mutation, token=stranger)).status_code == 200


async def test_sign_in_is_throttled_per_address_and_account_and_aliases_count(
    throttled_api: GraphQLClient, factory: Factory
) -> None:
    await factory.staff(role=StaffRole.ADMIN, email="ada@example.com", password="the right one")

    def aliased(first: int) -> str:  # two attempts in one request: the most one may hold
        return (
            "mutation { "
            + " ".join(
                f'a{n}: staffLogin(email: "ada@example.com", password: "guess{n}") '
                "{ userErrors { code } }"
                for n in (first, first + 1)
            )
            + " }"
        )

    before = refusals("login")
    data = {**await throttled_api(aliased(0)), **await throttled_api(aliased(2))}
    assert refusals("login") == before + 1
    # three attempts per address at an account: the fourth alias is refused without checking
    # the password
    codes = [data[f"a{n}"]["userErrors"][0]["code"] for n in range(4)]
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"]
    right = """mutation {
      staffLogin(email: "ada@example.com", password: "the right one") { token userErrors { code } }
    }"""
    locked = (await throttled_api(right))["staffLogin"]
    assert locked["token"] is None
    assert locked["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"


async def test_sign_in_is_throttled_per_address(throttled_api: GraphQLClient) -> None:
    attempts: list[Any] = []
    for n in range(6):
        login = f'staffLogin(email: "user{n}@example.com", password: "x")'
        mutation = f"mutation {{ {login} {{ userErrors {{ code }} }} }}"
        attempts.append((await throttled_api(mutation))["staffLogin"]["userErrors"][0]["code"])
    assert attempts == ["INVALID_CREDENTIALS"] * 5 + ["TOO_MANY_ATTEMPTS"]


LIST = "{ clients(first: 100) { nodes { login } } }"  # 100 nodes: one point


async def test_compiled_pages_are_charged_and_refused_like_any_query(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
    limiter: RateLimiter,
    factory: Factory,
    session: AsyncSession,
) -> None:
    # given a budget of 100 points a minute, shared (Redis or the database) with other processes
    budget = settings.model_copy(update={"rate_limit_points_per_minute": 100})
    app = create_app(
        budget, engine=engine, sessionmaker=sessionmaker, clock=clock, rate_limiter=limiter
    )
    token = await factory.admin_token()
    token_id = (
        await session.execute(select(ApiToken.id).where(ApiToken.token_hash == token_digest(token)))
    ).scalar_one()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://clientdesk.test") as http:
        api = GraphQLClient(http)
        # when the list is asked: compiled, one point each
        for left in (99, 98):
            answer = (await api.post(LIST, token=token)).json()
            assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == left
        assert app.state.compiled.answered == 2
        # and another process spends the rest of the bucket
        rest = await limiter.take(f"token:{token_id}", 98, Rate(100, timedelta(minutes=1)), clock())
        assert rest.allowed
        # then the next page is refused, though this process still thought it had 98 points
        refused = await api.post(LIST, token=token)
        assert refused.status_code == 429
        assert error_codes(refused.json()["errors"]) == ["RATE_LIMITED"]
        assert refused.json()["data"] is None
        # and after a few seconds the bucket has points again
        clock.advance(timedelta(seconds=3))
        assert (await api.post(LIST, token=token)).status_code == 200


LOGIN = """
mutation($email: String!) {
  staffLogin(email: $email, password: "x") { userErrors { code message } }
}
"""


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0, 1), (0.4, 1), (0.5, 1), (1.0, 1), (1.2, 2), (2 / (10 / 60), 12), (20.0, 20)],
)
def test_waits_are_shown_in_whole_seconds_rounded_up(seconds: float, shown: int) -> None:
    assert whole_seconds(seconds) == shown


async def test_a_nearly_refilled_login_bucket_says_one_second_not_zero(
    throttled_api: GraphQLClient, clock: FakeClock
) -> None:
    # given an account that had its three attempts (one comes back every 300 s)
    for _ in range(3):
        await throttled_api(LOGIN, {"email": "ada@example.com"})
    # when it tries again 0.4 s before the next attempt is there
    clock.advance(timedelta(seconds=299.6))
    [error] = (await throttled_api(LOGIN, {"email": "ada@example.com"}))["staffLogin"]["userErrors"]
    # then it is told to wait 1 s
    assert error == {
        "code": "TOO_MANY_ATTEMPTS",
        "message": "Too many sign-in attempts; try again in 1 s.",
    }


async def test_a_nearly_refilled_token_bucket_says_one_second_not_zero(
    throttled_api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given a token that spent its 30 points (half a point comes back a second)
    token = await factory.admin_token()
    mutation = 'mutation { clientAvatarReset(id: "Q2xpZW50OjA=") { userErrors { code } } }'
    for _ in range(3):
        assert (await throttled_api.post(mutation, token=token)).status_code == 200
    # when it asks for 10 points when 9.75 are back
    clock.advance(timedelta(seconds=19.5))
    refused = await throttled_api.post(mutation, token=token)
    # then it is told to wait 1 s
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    [error] = refused.json()["errors"]
    assert error["message"].endswith("try again in 1 s.")


KEYS = [
    "login:account:" + "a" * 300 + "@example.com",
    "login:account:" + "a" * 300 + "@example.org",  # same start, another bucket
    "login:account:nul\x00@example.com",
    "login:account:zoë@example.com",
    "login:account:\ud800@example.com",  # an unpaired surrogate: not even UTF-8
    "login:address:" + "f" * 1000,
]


async def test_any_key_fits_and_keeps_its_own_bucket(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    rate = Rate(2, timedelta(minutes=1))
    # when each key takes its two points
    for key in KEYS:
        assert (await limiter.take(key, 2, rate, clock())).allowed
    # then each has its own bucket, now empty
    for key in KEYS:
        assert not (await limiter.take(key, 1, rate, clock())).allowed


async def test_sign_in_with_a_very_long_email_is_throttled_like_any(
    throttled_api: GraphQLClient,
) -> None:
    email = "a" * 250 + "@" + "b" * 60 + ".example.com"
    answers = [(await throttled_api(LOGIN, {"email": email}))["staffLogin"] for _ in range(4)]
    codes = [answer["userErrors"][0]["code"] for answer in answers]
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"]


def test_a_rate_refills_within_the_longest_period() -> None:
    with pytest.raises(ValueError, match="at most"):
        Rate(10, LONGEST_PERIOD + timedelta(seconds=1))
    with pytest.raises(ValueError, match="more than 0"):
        Rate(10, timedelta(0))


async def stored_keys(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(RateLimitBucket.key))).all())


async def test_buckets_full_again_are_forgotten(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession, clock: FakeClock
) -> None:
    limiter = DatabaseRateLimiter(sessionmaker)
    rate = Rate(10, LONGEST_PERIOD)
    # given buckets of many one-off keys, and one emptied
    for n in range(20):
        await limiter.take(f"login:account:user{n}@example.com", 1, rate, clock())
    await limiter.take("token:1", 10, rate, clock())
    # and a bucket used a little later
    clock.advance(timedelta(seconds=30))
    await limiter.take("token:2", 10, rate, clock())
    assert len(await stored_keys(session)) == 22
    # when an ask comes once the first ones are full again
    clock.advance(LONGEST_PERIOD - timedelta(seconds=29))
    await limiter.take("token:3", 1, rate, clock())
    # then only the buckets that may still be short are kept
    assert await stored_keys(session) == {"token:2", "token:3"}
    # and a forgotten bucket is full, as it would have been
    assert (await limiter.take("token:1", 10, rate, clock())).remaining == 0
    # and the next look is SWEEP_EVERY later: until then, full buckets stay
    clock.advance(SWEEP_EVERY - timedelta(seconds=1))  # token:2 is full from now on
    await limiter.take("token:4", 1, rate, clock())
    assert await stored_keys(session) == {"token:1", "token:2", "token:3", "token:4"}
    clock.advance(timedelta(seconds=1))
    await limiter.take("token:5", 1, rate, clock())
    assert await stored_keys(session) == {"token:1", "token:3", "token:4", "token:5"}


async def test_forget_full_buckets(
    sessionmaker: async_sessionmaker[AsyncSession], session: AsyncSession, clock: FakeClock
) -> None:
    limiter = DatabaseRateLimiter(sessionmaker)
    rate = Rate(1, timedelta(minutes=15))
    await limiter.take("old", 1, rate, clock())
    clock.advance(LONGEST_PERIOD)
    await limiter.take("new", 1, rate, clock())  # exactly LONGEST_PERIOD: not yet
    assert await forget_full_buckets(session, now=clock()) == 0
    clock.advance(timedelta(microseconds=1))
    assert await forget_full_buckets(session, now=clock()) == 1
    assert await stored_keys(session) == {"new"}


SIGN_IN = """
mutation($email: String!, $password: String!) {
  staffLogin(email: $email, password: $password) { token userErrors { code } }
}
"""


async def sign_in(api: GraphQLClient, email: str, password: str) -> str:
    """`staffLogin`'s outcome: OK, or its first error code."""
    answer = (await api(SIGN_IN, {"email": email, "password": password}))["staffLogin"]
    if answer["token"] is not None:
        return "OK"
    return str(answer["userErrors"][0]["code"])


async def test_wrong_passwords_from_one_address_do_not_lock_the_account_out_elsewhere(
    signin_app: Any, factory: Factory, clock: FakeClock
) -> None:
    # given a staff user, and an outsider at address A who guesses 10 times and then once
    # every 90 s (as fast as the attempts come back at one address)
    await factory.staff(role=StaffRole.MANAGER, email="bo@example.com", password="the right one")
    at = from_addresses(signin_app)
    async with at("203.0.113.7") as outsider, at("198.51.100.20") as office:
        for _ in range(10):
            assert await sign_in(outsider, "bo@example.com", "guess") == "INVALID_CREDENTIALS"
        assert await sign_in(outsider, "bo@example.com", "guess") == "TOO_MANY_ATTEMPTS"
        for _ in range(12):  # 18 minutes: longer than the window
            clock.advance(timedelta(seconds=90))
            assert await sign_in(outsider, "bo@example.com", "guess") == "INVALID_CREDENTIALS"
            # then from A even the right password is refused, unchecked
            assert await sign_in(outsider, "bo@example.com", "the right one") == (
                "TOO_MANY_ATTEMPTS"
            )
            # and from B the staff user signs in all along
            assert await sign_in(office, "bo@example.com", "the right one") == "OK"
        # and once the outsider stops, A gets an attempt back within 90 s
        clock.advance(timedelta(seconds=89))
        assert await sign_in(outsider, "bo@example.com", "the right one") == "TOO_MANY_ATTEMPTS"
        clock.advance(timedelta(seconds=1))
        assert await sign_in(outsider, "bo@example.com", "the right one") == "OK"


async def test_spraying_accounts_from_one_address_is_limited(
    throttled_api: GraphQLClient, factory: Factory
) -> None:
    # given a staff user
    await factory.staff(role=StaffRole.MANAGER, email="cy@example.com", password="the right one")
    # when one address tries five other accounts once each (its budget, 5)
    for n in range(5):
        assert await sign_in(throttled_api, f"user{n}@example.com", "x") == "INVALID_CREDENTIALS"
    # then it may try no other account, not even with a right password
    assert await sign_in(throttled_api, "user9@example.com", "x") == "TOO_MANY_ATTEMPTS"
    assert await sign_in(throttled_api, "cy@example.com", "the right one") == "TOO_MANY_ATTEMPTS"


async def test_the_account_wide_limit_slows_attempts_from_many_addresses(
    throttled_app: Any, factory: Factory, clock: FakeClock
) -> None:
    # given 3 attempts per address at an account and 8 at an account from every address
    await factory.staff(role=StaffRole.MANAGER, email="di@example.com", password="the right one")
    at = from_addresses(throttled_app)
    codes = []
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        async with at(address) as api:
            codes += [await sign_in(api, "di@example.com", "guess") for _ in range(3)]
    # then the account's eight attempts are spent, whatever the address
    assert codes == ["INVALID_CREDENTIALS"] * 8 + ["TOO_MANY_ATTEMPTS"]
    async with at("10.0.0.4") as api:
        assert await sign_in(api, "di@example.com", "the right one") == "TOO_MANY_ATTEMPTS"
        # and one attempt comes back every 112.5 s (8 per 15 minutes)
        clock.advance(timedelta(seconds=112.5))
        assert await sign_in(api, "di@example.com", "the right one") == "OK"


async def test_unlocking_an_account_forgets_its_attempts_from_every_address(
    throttled_app: Any, factory: Factory, limiter: RateLimiter
) -> None:
    # given an account locked from three addresses, and an address that tried many accounts
    await factory.staff(role=StaffRole.MANAGER, email="ed@example.com", password="the right one")
    at = from_addresses(throttled_app)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        async with at(address) as api:
            for _ in range(3):
                await sign_in(api, "ed@example.com", "guess")
    async with at("10.0.0.9") as sprayer:
        for n in range(5):
            await sign_in(sprayer, f"user{n}@example.com", "x")
        assert await sign_in(sprayer, "other@example.com", "x") == "TOO_MANY_ATTEMPTS"
    async with at("10.0.0.4") as api:
        assert await sign_in(api, "ed@example.com", "the right one") == "TOO_MANY_ATTEMPTS"
    # when an admin unlocks it (any spelling of the e-mail)
    forgotten = await unlock_account(limiter, email=" ED@example.com ")
    # then its own bucket and each of the four addresses' buckets at it are gone
    assert forgotten == 5
    # and it signs in from any address, even from one that had spent its attempts at it
    async with at("10.0.0.1") as api:
        assert await sign_in(api, "ed@example.com", "the right one") == "OK"
    async with at("10.0.0.4") as api:
        assert await sign_in(api, "ed@example.com", "the right one") == "OK"
    # but the address that tried many accounts stays throttled
    async with at("10.0.0.9") as sprayer:
        assert await sign_in(sprayer, "ed@example.com", "the right one") == "TOO_MANY_ATTEMPTS"


async def test_forget_deletes_the_keys_and_prefixes_given_only(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    rate = Rate(1, timedelta(minutes=15))
    keys = ["a:1", "a:2", "a*:3", "b:1", "long:" + "x" * 200]
    for key in keys:
        assert (await limiter.take(key, 1, rate, clock())).allowed
    # a prefix is not a pattern: "a*:" is only itself
    assert await limiter.forget(prefixes=["a*:"]) == 1
    assert await limiter.forget(keys=["long:" + "x" * 200, "never:taken"], prefixes=["a:"]) == 3
    assert [(await limiter.take(key, 1, rate, clock())).allowed for key in keys] == [
        True,
        True,
        True,
        False,
        True,
    ]
    with pytest.raises(ValueError, match="plain"):
        await limiter.forget(prefixes=["x" * 200])


def test_the_account_wide_limit_must_be_above_one_addresss() -> None:
    with pytest.raises(ValueError, match="one address could keep an account locked"):
        Settings(login_attempts_per_address_account=10, login_attempts_per_account=10)
    assert Settings(login_attempts_per_address_account=10, login_attempts_per_account=11)


# --- the database limiter's leases: no write per ask, one budget across processes ---------


@asynccontextmanager
async def bucket_writes(connection: AsyncConnection) -> AsyncIterator[list[str]]:
    """The statements that change rate-limit buckets while the block runs."""
    writes: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "rate_limit_buckets" in statement and not statement.lstrip().startswith("SELECT"):
            writes.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    try:
        yield writes
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)


def updates(writes: list[str]) -> int:
    return sum(statement.lstrip().startswith("UPDATE") for statement in writes)


async def test_asks_are_answered_from_a_leased_slice_with_one_write_per_slice(
    sessionmaker: async_sessionmaker[AsyncSession], connection: AsyncConnection, clock: FakeClock
) -> None:
    # given a process's limiter and a budget of 1,000 points a minute (slices of 100)
    limiter = DatabaseRateLimiter(sessionmaker)
    rate = Rate(1000, timedelta(minutes=1))
    assert LEASE_SHARE * rate.capacity == 100
    async with bucket_writes(connection) as writes:
        # when 300 requests of one point each come within the lease, 32 at a time
        decisions = []
        for _ in range(300 // 30):
            decisions += await asyncio.gather(
                *(limiter.take("token:1", 1, rate, clock()) for _ in range(30))
            )
    # then all are allowed, each seeing one point fewer
    assert all(decision.allowed for decision in decisions)
    assert [decision.remaining for decision in decisions] == [999 - n for n in range(300)]
    # after one write per 100 asks: one update per slice (besides the insert of the new
    # bucket and this process's first sweep for full buckets)
    assert [statement.split()[0] for statement in writes] == [
        "INSERT",
        "UPDATE",
        "DELETE",
        "UPDATE",
        "UPDATE",
    ]


async def test_two_processes_share_one_budget(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    # given two processes' limiters on one database, and 60 points a minute (slices of 6)
    one, other = DatabaseRateLimiter(sessionmaker), DatabaseRateLimiter(sessionmaker)
    rate = Rate(60, timedelta(minutes=1))
    # when each asks, turn about, 1 and 3 points until both are refused
    allowed = {"one": 0, "other": 0}
    while True:
        first = await one.take("token:7", 1, rate, clock())
        second = await other.take("token:7", 3, rate, clock())
        allowed["one"] += first.allowed
        allowed["other"] += 3 * second.allowed
        if not first.allowed and not second.allowed:
            break
    # then together they had the budget, not a point more (the 3-point asker may be refused
    # with a point or two still in the bucket)
    assert 58 <= sum(allowed.values()) <= 60
    assert allowed["one"] > 0
    assert allowed["other"] > 0
    # and after 10 s (10 points back) they get the refill, not more
    clock.advance(timedelta(seconds=10))
    again = 0
    for _ in range(20):
        again += (await one.take("token:7", 1, rate, clock())).allowed
        again += (await other.take("token:7", 1, rate, clock())).allowed
    assert sum(allowed.values()) + again <= 70
    assert again >= 10


async def test_over_time_two_processes_stay_within_the_documented_bound(
    sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    # given two processes asking a point each, four times a second each, for two minutes, of
    # a bucket refilled by one point a second (60 a minute; slices of 6)
    one, other = DatabaseRateLimiter(sessionmaker), DatabaseRateLimiter(sessionmaker)
    rate = Rate(60, timedelta(minutes=1))
    allowed = 0
    for _ in range(4 * 120):
        allowed += (await one.take("token:8", 1, rate, clock())).allowed
        allowed += (await other.take("token:8", 1, rate, clock())).allowed
        clock.advance(timedelta(seconds=0.25))
    # then they got at most what an exact bucket allows (capacity + refill) plus one slice
    # per process, and not much less
    exact = 60 + 120
    assert allowed <= exact + 2 * 6
    assert allowed >= exact - 2 * 6


async def test_a_lease_expires_and_then_sees_what_other_processes_spent(
    sessionmaker: async_sessionmaker[AsyncSession], connection: AsyncConnection, clock: FakeClock
) -> None:
    # given a process that leased a slice (10 of 100 points an hour) and spent a point of it
    one, other = DatabaseRateLimiter(sessionmaker), DatabaseRateLimiter(sessionmaker)
    rate = Rate(100, timedelta(hours=1))
    assert (await one.take("token:9", 1, rate, clock())).remaining == 99
    # and another process that spends everything else in the row
    assert (await other.take("token:9", 90, rate, clock())).remaining == 0
    async with bucket_writes(connection) as writes:
        # when the first asks again within its lease: answered from its slice, no write,
        # not knowing yet what the other spent
        within = await one.take("token:9", 1, rate, clock())
        assert (within.allowed, within.remaining) == (True, 98)
        assert writes == []
        # and once the lease has expired
        clock.advance(LEASE_FOR)
        after = await one.take("token:9", 1, rate, clock())
    # then it gave back its 8 unspent points and took them again, in one write, and it
    # knows what is left: its own 7 and the second's refill
    assert updates(writes) == 1
    assert after.allowed
    assert after.remaining == pytest.approx(7 + rate.per_second * LEASE_FOR.total_seconds())


async def test_a_throttled_token_costs_no_write_per_refused_ask(
    sessionmaker: async_sessionmaker[AsyncSession], connection: AsyncConnection, clock: FakeClock
) -> None:
    # given a bucket that is empty
    limiter = DatabaseRateLimiter(sessionmaker)
    rate = Rate(30, timedelta(minutes=1))
    assert (await limiter.take("token:10", 30, rate, clock())).allowed
    async with bucket_writes(connection) as writes:
        # when asked again and again within the lease
        refused = [await limiter.take("token:10", 10, rate, clock()) for _ in range(50)]
        # then each is refused, with the time to wait, without a write
        assert not any(decision.allowed for decision in refused)
        assert refused[-1].retry_after == pytest.approx(20.0)
        assert writes == []
        # and after the lease, one write reads the bucket again
        clock.advance(LEASE_FOR)
        assert not (await limiter.take("token:10", 10, rate, clock())).allowed
    assert updates(writes) == 1


async def test_exact_asks_lease_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], connection: AsyncConnection, clock: FakeClock
) -> None:
    # given sign-in attempts at an account: 100 per 15 minutes, asked by two processes
    one, other = DatabaseRateLimiter(sessionmaker), DatabaseRateLimiter(sessionmaker)
    rate = Rate(100, timedelta(minutes=15))
    async with bucket_writes(connection) as writes:
        for n in range(5):
            limiter = one if n % 2 else other
            assert (await limiter.take("login:account:x", 1, rate, clock(), exact=True)).allowed
    # then each attempt was one write, and the row holds exactly what is left
    assert updates(writes) == 5
    decision = await one.take("login:account:x", 95, rate, clock(), exact=True)
    assert (decision.allowed, decision.remaining) == (True, 0)
    assert not (await other.take("login:account:x", 1, rate, clock(), exact=True)).allowed


# PostgreSQL only: the pool that can run dry is PostgreSQL's (SQLite opens what it needs)
@pytest.mark.parametrize("backend", ["postgresql"] if POSTGRES_URL else [], indirect=True)
async def test_asks_waiting_for_a_renewal_hold_no_connection(
    scratch_url: str, clock: FakeClock
) -> None:
    # given a pool of two connections, each held by a request that has read (its token)
    engine = create_engine(scratch_url, pool_size=2, max_overflow=0, pool_timeout=5)
    sessions = create_sessionmaker(engine)
    limiter = DatabaseRateLimiter(sessions)
    rate = Rate(1000, timedelta(minutes=1))
    first, second, third = (SharedSession(sessions) for _ in range(3))
    try:
        await second.fetch_all(select(literal(1)))
        await third.fetch_all(select(literal(1)))

        async def ask(db: SharedSession) -> Decision:
            return await limiter.bound(db.exclusive).take("token:1", 1, rate, clock())

        # when a request that holds none (its token was cached) asks first for a bucket that
        # has no lease yet, and the two others ask while it renews
        async with asyncio.timeout(4):  # before the pool's timeout: a deadlock fails here
            decisions = await asyncio.gather(ask(first), ask(second), ask(third))
    finally:
        for db in (first, second, third):
            await db.finish()
        await engine.dispose()
    # then the renewal got a connection: those waiting for it had given theirs back
    assert [decision.allowed for decision in decisions] == [True, True, True]
