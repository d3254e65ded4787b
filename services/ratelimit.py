"""Rate limits as token buckets, kept where every process and replica sees them: in Redis
(one atomic script call) or, without Redis, in the database (one locked row)."""

import asyncio
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis
from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from db.models import RateLimitBucket
from db.session import begin_write

# A bucket refills from empty within its rate's period, so one left alone that long is full
# again: as good as none, and forgotten (the database's rows; Redis expires its keys).
LONGEST_PERIOD = timedelta(hours=1)
# How often a process looks for such rows, by the clock of the asks.
SWEEP_EVERY = timedelta(minutes=1)
# Keys are kept as given up to this length when plain printable ASCII, else as a digest: they
# are made of what callers send (an e-mail, an address), and must fit the column whatever it is.
KEY_LENGTH = 100


@dataclass(frozen=True, slots=True)
class Rate:
    """`capacity` points, refilled evenly over `period` (at most LONGEST_PERIOD)."""

    capacity: int
    period: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.period <= LONGEST_PERIOD:
            raise ValueError(f"a rate's period is more than 0 and at most {LONGEST_PERIOD}")

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

    @classmethod
    def after(cls, allowed: bool, tokens: float, cost: int, rate: Rate) -> "Decision":
        """The decision on asking `cost`, with `tokens` left in the bucket afterwards."""
        return cls(allowed, tokens, rate, 0.0 if allowed else (cost - tokens) / rate.per_second)

    @property
    def wait_seconds(self) -> int:
        """`retry_after` in whole seconds, for people: rounded up, at least 1."""
        return whole_seconds(self.retry_after)


def whole_seconds(wait: float) -> int:
    """A wait in whole seconds, for people: rounded up, at least 1 (a wait of 0.4 s is not
    "0 s"; float noise such as 12.000000000000002 is not 13)."""
    return max(1, math.ceil(round(wait, 6)))


def plain_prefix(prefix: str) -> str:
    """A prefix `forget` can look for: short plain text, as keys are stored as given."""
    if stored_key(prefix) != prefix or not prefix:
        raise ValueError("a prefix to forget is plain printable ASCII of at most KEY_LENGTH")
    return prefix


def stored_key(key: str) -> str:
    """The bucket's key as stored: itself when short plain text, else a fixed-length digest
    (callers' keys start with their kind, `token:` or `login:`, so no key given looks like a
    digest)."""
    if len(key) <= KEY_LENGTH and key.isascii() and key.isprintable():
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class RateLimiter(Protocol):
    async def take(self, key: str, cost: int, rate: Rate, now: datetime) -> Decision: ...

    def bound(self, sessions: "SessionScope") -> "RateLimiter":
        """The limiter for one request, using that request's database session if it needs one
        (a second connection per request could exhaust the pool under load)."""
        ...

    async def forget(self, *, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int:
        """Delete the buckets of `keys` and of every key starting with one of `prefixes`
        (plain text no longer than KEY_LENGTH: the keys they find are stored as given); how
        many went. A forgotten bucket is full."""
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
        return tokens - cost, Decision.after(True, tokens - cost, cost, rate)
    return tokens, Decision.after(False, tokens, cost, rate)


# KEYS[1] bucket; ARGV capacity, refill per second, now (epoch seconds), then one cost per
# ask, applied in order. Returns, per ask, allowed (0/1) and the tokens left after it, as a
# string (Redis would truncate a Lua number).
TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local answers = {}
for i = 4, #ARGV do
  local cost = tonumber(ARGV[i])
  local allowed = 0
  if tokens >= cost then
    tokens = tokens - cost
    allowed = 1
  end
  answers[#answers + 1] = allowed
  answers[#answers + 1] = tostring(tokens)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(math.max(now, ts)))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return answers
"""


@dataclass(slots=True)
class _Ask:
    cost: int
    rate: Rate
    now: datetime
    answer: "asyncio.Future[Decision]"


class RedisRateLimiter:
    """Buckets in Redis, updated by one Lua script call (atomic across every process).

    A process asks once per bucket at a time: asks for a bucket that arrive while its call is
    in flight wait for it and then go together, in arrival order, in one call (under load one
    token's requests would otherwise queue in Redis one by one). The bucket is refilled once
    for the batch, to its latest ask's time, and the asks are decided in order.
    """

    def __init__(self, url: str, *, prefix: str = "clientdesk:ratelimit:") -> None:
        self.redis = aioredis.from_url(url)
        self.prefix = prefix
        self.script = self.redis.register_script(TOKEN_BUCKET)
        self._waiting: dict[str, list[_Ask]] = {}  # per bucket with a call in flight
        self._sending: set[asyncio.Task[None]] = set()  # held until done (asyncio keeps none)

    async def take(self, key: str, cost: int, rate: Rate, now: datetime) -> Decision:
        key = stored_key(key)
        waiting = self._waiting.get(key)
        if waiting is not None:
            ask = _Ask(cost, rate, now, asyncio.get_running_loop().create_future())
            waiting.append(ask)
            return await ask.answer
        self._waiting[key] = []
        try:
            [decision] = await self._call(key, rate, now, [cost])
        finally:
            self._next(key)
        return decision

    def _next(self, key: str) -> None:
        """After a call: send what waited for it, or free the bucket."""
        waiting = self._waiting.get(key)
        if not waiting:
            self._waiting.pop(key, None)
            return
        self._waiting[key] = []
        task = asyncio.get_running_loop().create_task(self._send(key, waiting))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, key: str, asks: list[_Ask]) -> None:
        batches: dict[Rate, list[_Ask]] = {}
        for ask in asks:
            if not ask.answer.done():  # a request that gave up asks for nothing
                # one key has one rate; kept apart should a caller differ
                batches.setdefault(ask.rate, []).append(ask)
        try:
            for rate, batch in batches.items():
                now = max(ask.now for ask in batch)
                try:
                    decisions = await self._call(key, rate, now, [ask.cost for ask in batch])
                except Exception as error:
                    for ask in batch:
                        if not ask.answer.done():
                            ask.answer.set_exception(error)
                    continue
                for ask, decision in zip(batch, decisions, strict=True):
                    if not ask.answer.done():
                        ask.answer.set_result(decision)
        finally:
            for ask in asks:  # cancelled itself (the loop is closing): nobody waits forever
                if not ask.answer.done():
                    ask.answer.cancel()
            self._next(key)

    async def _call(self, key: str, rate: Rate, now: datetime, costs: list[int]) -> list[Decision]:
        answers = await self.script(
            keys=[self.prefix + key], args=[rate.capacity, rate.per_second, now.timestamp(), *costs]
        )
        return [
            Decision.after(bool(allowed), float(left), cost, rate)
            for cost, allowed, left in zip(costs, answers[::2], answers[1::2], strict=True)
        ]

    def bound(self, sessions: SessionScope) -> "RedisRateLimiter":
        return self

    async def forget(self, *, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int:
        names = {self.prefix + stored_key(key) for key in keys}
        for prefix in prefixes:
            pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix + plain_prefix(prefix))
            async for name in self.redis.scan_iter(match=pattern + "*"):
                names.add(name.decode() if isinstance(name, bytes) else name)
        return int(await self.redis.delete(*names)) if names else 0

    async def close(self) -> None:
        await self.redis.aclose()


async def forget_full_buckets(session: AsyncSession, *, now: datetime) -> int:
    """Delete the buckets left alone for LONGEST_PERIOD (full again); how many went."""
    await begin_write(session)
    gone = await session.execute(
        delete(RateLimitBucket).where(RateLimitBucket.updated_at < now - LONGEST_PERIOD)
    )
    await session.commit()
    return int(gone.rowcount)  # type: ignore[attr-defined]  # a DML result has one


@dataclass(slots=True)
class _Sweeps:
    """When this process next looks for full buckets (shared by a limiter's bound copies)."""

    next_at: datetime | None = None


class DatabaseRateLimiter:
    """Buckets in a table, each taken under a row lock (or SQLite's write lock). Every
    SWEEP_EVERY an ask also deletes the buckets that are full again (`forget_full_buckets`),
    so the table holds only the buckets of the last LONGEST_PERIOD, whatever the keys."""

    def __init__(self, sessions: SessionScope, *, sweeps: _Sweeps | None = None) -> None:
        self.sessions = sessions
        self._sweeps = sweeps or _Sweeps()

    def bound(self, sessions: SessionScope) -> "DatabaseRateLimiter":
        return DatabaseRateLimiter(sessions, sweeps=self._sweeps)

    async def take(self, key: str, cost: int, rate: Rate, now: datetime) -> Decision:
        key = stored_key(key)
        async with self.sessions() as session:
            await begin_write(session)
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            bucket = None
            while bucket is None:  # twice at most: a sweep may delete the row in between
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
                ).one_or_none()
            tokens, decision = _decide(bucket.tokens, bucket.updated_at, cost, rate, now)
            await session.execute(
                update(RateLimitBucket)
                .where(RateLimitBucket.key == key)
                .values(tokens=tokens, updated_at=max(now, bucket.updated_at))
            )
            await session.commit()
            sweeps = self._sweeps
            if sweeps.next_at is None or sweeps.next_at <= now:
                sweeps.next_at = now + SWEEP_EVERY  # before the await: one sweep at a time
                await forget_full_buckets(session, now=now)
        return decision

    async def forget(self, *, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int:
        found: list[ColumnElement[bool]] = [
            RateLimitBucket.key.in_([stored_key(key) for key in keys])
        ]
        found += [
            RateLimitBucket.key.startswith(plain_prefix(prefix), autoescape=True)
            for prefix in prefixes
        ]
        async with self.sessions() as session:
            await begin_write(session)
            gone = await session.execute(delete(RateLimitBucket).where(or_(*found)))
            await session.commit()
        return int(gone.rowcount)  # type: ignore[attr-defined]  # a DML result has one

    async def close(self) -> None:
        return None
