"""Rate limits: token buckets shared through Redis or the database, 429 when empty, and
sign-in attempts throttled per account and per address (aliases count)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clientdesk.settings import Settings
from db.enums import StaffRole
from db.models import ApiToken
from gql.app import create_app
from services.auth import token_digest
from services.ratelimit import DatabaseRateLimiter, Rate, RateLimiter, RedisRateLimiter
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
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
    calls_before = await evalsha_calls(limiter)
    try:
        # when 8 requests ask for 2 points each at once
        decisions = await asyncio.gather(
            *(limiter.take("busy", 2, rate, clock()) for _ in range(8))
        )
        calls = await evalsha_calls(limiter) - calls_before
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


async def evalsha_calls(limiter: RedisRateLimiter) -> int:
    stats = await limiter.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def refusals(limit: str) -> float:
    """The refusals /metrics reports (tests/gql/test_observability.py scrapes it)."""
    value = REGISTRY.get_sample_value("clientdesk_rate_limit_refusals_total", {"limit": limit})
    return value or 0.0


@pytest.fixture
async def throttled_api(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
    limiter: RateLimiter,
) -> AsyncIterator[GraphQLClient]:
    tight = settings.model_copy(
        update={
            "rate_limit_points_per_minute": 30,
            "login_attempts_per_account": 3,
            "login_attempts_per_address": 5,
        }
    )
    app = create_app(
        tight, engine=engine, sessionmaker=sessionmaker, clock=clock, rate_limiter=limiter
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://clientdesk.test") as http:
        yield GraphQLClient(http)


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


async def test_sign_in_is_throttled_per_account_and_aliases_count(
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
    # three attempts per account: the fourth alias is refused without checking the password
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
