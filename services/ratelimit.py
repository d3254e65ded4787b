"""Rate limits as token buckets, kept where every process and replica sees them: in Redis
(one atomic script call) or, without Redis, in the database (one locked row)."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import RateLimitBucket
from db.session import begin_write


@dataclass(frozen=True, slots=True)
class Rate:
    """`capacity` points, refilled evenly over `period`."""

    capacity: int
    period: timedelta

    @property
    def per_second(self) -> float:
        return self.capacity / self.period.total_seconds()


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the points were taken, and what is left."""

    allowed: bool
    remaining: float
    rate: Rate
    retry_after: float  # seconds until the points asked for are there; 0 when allowed


class RateLimiter(Protocol):
    async def take(self, key: str, cost: int, rate: Rate, now: datetime) -> Decision: ...

    def bound(self, sessions: "SessionScope") -> "RateLimiter":
        """The limiter for one request, using that request's database session if it needs one
        (a second connection per request could exhaust the pool under load)."""
        ...

    async def close(self) -> None: ...


# Opens a session for a short transaction: a sessionmaker, or a request's shared session.
SessionScope = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def _decide(
    tokens: float, updated: datetime | None, cost: int, rate: Rate, now: datetime
) -> tuple[float, Decision]:
    """The bucket after `cost` is asked of it at `now` (the same arithmetic as the script)."""
    if updated is not None:
        elapsed = max(0.0, (now - updated).total_seconds())
        tokens = min(float(rate.capacity), tokens + elapsed * rate.per_second)
    if tokens >= cost:
        return tokens - cost, Decision(True, tokens - cost, rate, 0.0)
    return tokens, Decision(False, tokens, rate, (cost - tokens) / rate.per_second)


# KEYS[1] bucket; ARGV capacity, refill per second, now (epoch seconds), cost.
# Returns {allowed (0/1), tokens left as a string} (Redis would truncate a Lua number).
TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """Buckets in Redis, updated by one Lua script call (atomic across every process)."""

    def __init__(self, url: str, *, prefix: str = "clientdesk:ratelimit:") -> None:
        self.redis = aioredis.from_url(url)
        self.prefix = prefix
        self.script = self.redis.register_script(TOKEN_BUCKET)

    async def take(self, key: str, cost: int, rate: Rate, now: datetime) -> Decision:
        allowed, left = await self.script(
            keys=[self.prefix + key], args=[rate.capacity, rate.per_second, now.timestamp(), cost]
        )
        tokens = float(left)
        retry = 0.0 if allowed else (cost - tokens) / rate.per_second
        return Decision(bool(allowed), tokens, rate, retry)

    def bound(self, sessions: SessionScope) -> "RedisRateLimiter":
        return self

    async def close(self) -> None:
        await self.redis.aclose()


class DatabaseRateLimiter:
    """Buckets in a table, each taken under a row lock (or SQLite's write lock)."""

    def __init__(self, sessions: SessionScope) -> None:
        self.sessions = sessions

    def bound(self, sessions: SessionScope) -> "DatabaseRateLimiter":
        return DatabaseRateLimiter(sessions)

    async def take(self, key: str, cost: int, rate: Rate, now: datetime) -> Decision:
        async with self.sessions() as session:
            await begin_write(session)
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            await session.execute(
                insert(RateLimitBucket)
                .values(key=key, tokens=float(rate.capacity), updated_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            bucket = (
                await session.execute(
                    select(RateLimitBucket.tokens, RateLimitBucket.updated_at)
                    .where(RateLimitBucket.key == key)
                    .with_for_update()
                )
            ).one()
            tokens, decision = _decide(bucket.tokens, bucket.updated_at, cost, rate, now)
            await session.execute(
                update(RateLimitBucket)
                .where(RateLimitBucket.key == key)
                .values(tokens=tokens, updated_at=max(now, bucket.updated_at))
            )
            await session.commit()
        return decision

    async def close(self) -> None:
        return None
