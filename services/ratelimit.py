"""Rate limits as token buckets, kept where every process and replica sees them: in Redis
(one atomic script call per ask) or, without Redis, in the database (one locked row, from
which each process leases a slice of the budget and spends it without I/O)."""

import asyncio
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
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
# Without Redis, a process takes a slice of a bucket from its row at a time (one locked
# UPDATE) and spends it locally: at most this share of the capacity (or the ask, if more)...
LEASE_SHARE = 0.1
# ...for at most this long: then it returns what is left and reads the row again, so what
# other processes spent shows within this time.
LEASE_FOR = timedelta(seconds=1)


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
    async def take(
        self, key: str, cost: int, rate: Rate, now: datetime, *, exact: bool = False
    ) -> Decision:
        """Take `cost` points from the bucket of `key` if it has them. `exact`: decided on
        the shared bucket itself, never on a slice leased by this process (sign-in
        attempts, whose budgets are a handful)."""
        ...

    async def take_all(
        self, buckets: Sequence[tuple[str, Rate]], cost: int, now: datetime
    ) -> list[Decision]:
        """Take `cost` points from each bucket in turn, stopping at the first that cannot
        give them: the decisions made, the last one refused when fewer than all allowed
        (the buckets before it keep the charge; those after it are not asked)."""
        ...

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


def _refilled(tokens: float, updated_at: datetime, rate: Rate, now: datetime) -> float:
    """What a stored bucket holds at `now`."""
    elapsed = max(0.0, (now - updated_at).total_seconds())
    return min(float(rate.capacity), tokens + elapsed * rate.per_second)


# KEYS: the buckets, asked in that order. ARGV: now (epoch seconds), then capacity and refill
# per second for each bucket, then one cost per ask, the asks applied in order. An ask takes
# its cost from each bucket in turn and stops at the first that cannot give it. Returns, per
# ask, for each bucket it reached: allowed (0/1) and the tokens left after it, as a string
# (Redis would truncate a Lua number).
TOKEN_BUCKETS = """
local now = tonumber(ARGV[1])
local n = #KEYS
local capacity, rate, tokens, ts = {}, {}, {}, {}
for b = 1, n do
  capacity[b] = tonumber(ARGV[2 * b])
  rate[b] = tonumber(ARGV[2 * b + 1])
  local state = redis.call('HMGET', KEYS[b], 'tokens', 'ts')
  local held = tonumber(state[1])
  ts[b] = tonumber(state[2])
  if held == nil then
    held = capacity[b]
    ts[b] = now
  end
  tokens[b] = math.min(capacity[b], held + math.max(0, now - ts[b]) * rate[b])
end
local answers = {}
for i = 2 * n + 2, #ARGV do
  local cost = tonumber(ARGV[i])
  local answer = {}
  for b = 1, n do
    local allowed = 0
    if tokens[b] >= cost then
      tokens[b] = tokens[b] - cost
      allowed = 1
    end
    answer[#answer + 1] = allowed
    answer[#answer + 1] = tostring(tokens[b])
    if allowed == 0 then
      break
    end
  end
  answers[#answers + 1] = answer
end
for b = 1, n do
  redis.call('HSET', KEYS[b], 'tokens', tostring(tokens[b]), 'ts', tostring(math.max(now, ts[b])))
  redis.call('EXPIRE', KEYS[b], math.ceil(capacity[b] / rate[b]) + 60)
end
return answers
"""

Buckets = tuple[tuple[str, Rate], ...]  # stored keys, in the order they are asked


@dataclass(slots=True)
class _Ask:
    cost: int
    now: datetime
    answer: "asyncio.Future[list[Decision]]"


class RedisRateLimiter:
    """Buckets in Redis, updated by one Lua script call (atomic across every process); a
    request's buckets (its token's, then its owner's) are asked in the same call.

    A process asks once per set of buckets at a time: asks for the same buckets that arrive
    while its call is in flight wait for it and then go together, in arrival order, in one
    call (under load one token's requests would otherwise queue in Redis one by one). The
    buckets are refilled once for the batch, to its latest ask's time, and the asks are
    decided in order.
    """

    def __init__(self, url: str, *, prefix: str = "clientdesk:ratelimit:") -> None:
        self.redis = aioredis.from_url(url)
        self.prefix = prefix
        self.script = self.redis.register_script(TOKEN_BUCKETS)
        self._waiting: dict[Buckets, list[_Ask]] = {}  # per buckets with a call in flight
        self._sending: set[asyncio.Task[None]] = set()  # held until done (asyncio keeps none)

    async def take(
        self, key: str, cost: int, rate: Rate, now: datetime, *, exact: bool = False
    ) -> Decision:
        # every ask is exact here: one script call decides it
        [decision] = await self.take_all([(key, rate)], cost, now)
        return decision

    async def take_all(
        self, buckets: Sequence[tuple[str, Rate]], cost: int, now: datetime
    ) -> list[Decision]:
        stored = tuple((stored_key(key), rate) for key, rate in buckets)
        waiting = self._waiting.get(stored)
        if waiting is not None:
            ask = _Ask(cost, now, asyncio.get_running_loop().create_future())
            waiting.append(ask)
            return await ask.answer
        self._waiting[stored] = []
        try:
            [decisions] = await self._call(stored, now, [cost])
        finally:
            self._next(stored)
        return decisions

    def _next(self, buckets: Buckets) -> None:
        """After a call: send what waited for it, or free the buckets."""
        waiting = self._waiting.get(buckets)
        if not waiting:
            self._waiting.pop(buckets, None)
            return
        self._waiting[buckets] = []
        task = asyncio.get_running_loop().create_task(self._send(buckets, waiting))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, buckets: Buckets, asks: list[_Ask]) -> None:
        batch = [ask for ask in asks if not ask.answer.done()]  # who gave up asks for nothing
        try:
            if batch:
                now = max(ask.now for ask in batch)
                try:
                    decided = await self._call(buckets, now, [ask.cost for ask in batch])
                except Exception as error:
                    for ask in batch:
                        if not ask.answer.done():
                            ask.answer.set_exception(error)
                else:
                    for ask, decisions in zip(batch, decided, strict=True):
                        if not ask.answer.done():
                            ask.answer.set_result(decisions)
        finally:
            for ask in asks:  # cancelled itself (the loop is closing): nobody waits forever
                if not ask.answer.done():
                    ask.answer.cancel()
            self._next(buckets)

    async def _call(
        self, buckets: Buckets, now: datetime, costs: list[int]
    ) -> list[list[Decision]]:
        rates = [number for _, rate in buckets for number in (rate.capacity, rate.per_second)]
        answers = await self.script(
            keys=[self.prefix + key for key, _ in buckets],
            args=[now.timestamp(), *rates, *costs],
        )
        return [
            [
                Decision.after(bool(allowed), float(left), cost, rate)
                for (_, rate), allowed, left in zip(
                    buckets, answer[::2], answer[1::2], strict=False
                )
            ]
            for cost, answer in zip(costs, answers, strict=True)
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
class _Lease:
    """Points this process took from a bucket's row, to spend without asking the database
    until they run out or LEASE_FOR has passed; and the row as it was left then."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one renewal at a time
    points: float = 0.0  # unspent
    row_tokens: float = 0.0  # what the row held once the slice was taken
    taken_at: datetime | None = None

    def valid(self, now: datetime) -> bool:
        return self.taken_at is not None and self.taken_at <= now < self.taken_at + LEASE_FOR

    def seen(self, rate: Rate, now: datetime) -> float:
        """What this process knows to be left: the row as last read, refilled since, and
        the unspent slice (at most the capacity)."""
        assert self.taken_at is not None
        elapsed = max(0.0, (now - self.taken_at).total_seconds())
        return min(float(rate.capacity), self.row_tokens + elapsed * rate.per_second + self.points)

    def spend(self, cost: int, rate: Rate, now: datetime) -> Decision | None:
        """The decision without I/O while the lease holds: allowed from the slice; refused
        when the slice and the row as last read cannot cover the cost; else None (ask the
        row)."""
        if not self.valid(now):
            return None
        if self.points >= cost:
            self.points -= cost
            return Decision.after(True, self.seen(rate, now), cost, rate)
        seen = self.seen(rate, now)
        if seen < cost:
            return Decision.after(False, seen, cost, rate)
        return None


@dataclass(slots=True)
class _Sweeps:
    """When this process next looks for full buckets, and its leases (shared by a limiter's
    bound copies)."""

    next_at: datetime | None = None
    leases: dict[str, _Lease] = field(default_factory=dict)


class DatabaseRateLimiter:
    """Buckets in a table, each changed under a row lock (or SQLite's write lock). Every
    SWEEP_EVERY an ask also deletes the buckets that are full again (`forget_full_buckets`),
    so the table holds only the buckets of the last LONGEST_PERIOD, whatever the keys.

    A process does not write the row per ask: it leases a slice of the bucket (one short
    transaction, the row read FOR UPDATE and written back, takes min(what is there, max(the
    ask, LEASE_SHARE of the capacity))) and spends it locally until it runs out or LEASE_FOR
    has passed; the next renewal returns the unspent part and takes the next slice in the same
    transaction. One renewal per bucket at a time: asks
    arriving meanwhile wait for it and then spend the new slice. While a lease holds, an ask
    the slice cannot cover is refused without I/O when the row as last read (refilled since)
    could not cover it either, so a throttled token costs one write per LEASE_FOR, not one per
    request.

    The bound: leased points are taken from the row, so they are never spent twice; but the
    row refills while slices are out. Over any interval, a token's asks allowed across P
    processes add up to at most what an exact bucket would allow plus the slices outstanding
    at its start: capacity + rate x interval + P x ceil(LEASE_SHARE x capacity) (a slice
    larger than that is one ask's cost, spent at once). A process may also refuse an ask
    another process's slice could have covered, for at most LEASE_FOR. `exact` asks lease
    nothing: one such transaction each, as sign-in attempts need.
    """

    def __init__(self, sessions: SessionScope, *, sweeps: _Sweeps | None = None) -> None:
        self.sessions = sessions
        self._sweeps = sweeps or _Sweeps()

    def bound(self, sessions: SessionScope) -> "DatabaseRateLimiter":
        return DatabaseRateLimiter(sessions, sweeps=self._sweeps)

    async def take(
        self, key: str, cost: int, rate: Rate, now: datetime, *, exact: bool = False
    ) -> Decision:
        key = stored_key(key)
        if exact:
            async with self.sessions() as session:
                decision, _, _ = await self._renew(session, key, 0.0, cost, cost, rate, now)
        else:
            leases = self._sweeps.leases
            lease = leases.get(key)
            if lease is None:
                lease = leases[key] = _Lease()
            decision_or_none = lease.spend(cost, rate, now)
            if decision_or_none is not None:
                return decision_or_none
            # The session first: a request's shared session gives its read connection back to
            # the pool then, so asks waiting for the renewal hold none, and the renewal, which
            # needs one, cannot wait for them.
            async with self.sessions() as session, lease.lock:
                decision_or_none = lease.spend(cost, rate, now)  # renewed while we waited?
                if decision_or_none is not None:
                    return decision_or_none
                share = max(cost, math.ceil(rate.capacity * LEASE_SHARE))
                decision, row_tokens, left = await self._renew(
                    session, key, lease.points, cost, share, rate, now
                )
                # the lease changes once the row has (a failed renewal gave nothing back)
                lease.points, lease.row_tokens, lease.taken_at = left, row_tokens, now
        await self._sweep(now)
        return decision

    async def take_all(
        self, buckets: Sequence[tuple[str, Rate]], cost: int, now: datetime
    ) -> list[Decision]:
        # while leases hold, each ask is answered without I/O: one after the other is cheap
        decisions = []
        for key, rate in buckets:
            decisions.append(await self.take(key, cost, rate, now))
            if not decisions[-1].allowed:
                break
        return decisions

    async def _renew(
        self,
        session: AsyncSession,
        key: str,
        unspent: float,
        cost: int,
        share: int,
        rate: Rate,
        now: datetime,
    ) -> tuple[Decision, float, float]:
        """Give back `unspent` points and take `cost`, and up to `share` in all, from the row
        in one transaction: the decision (its `remaining` counts the slice's unspent part),
        what the row holds afterwards, and the slice's unspent part."""
        await begin_write(session)
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        locked = (
            select(RateLimitBucket.tokens, RateLimitBucket.updated_at)
            .where(RateLimitBucket.key == key)
            .with_for_update()
        )
        bucket = (await session.execute(locked)).one_or_none()
        while bucket is None:  # a new bucket (twice at most: a sweep may delete it)
            await session.execute(
                insert(RateLimitBucket)
                .values(key=key, tokens=float(rate.capacity), updated_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            bucket = (await session.execute(locked)).one_or_none()
        tokens = _refilled(bucket.tokens, bucket.updated_at, rate, now) + unspent
        tokens = min(float(rate.capacity), tokens)
        if tokens >= cost:
            leased = min(tokens, float(share))  # the ask and the rest of the slice
            tokens -= leased
            decision = Decision.after(True, tokens + leased - cost, cost, rate)
            left = leased - cost
        else:
            decision, left = Decision.after(False, tokens, cost, rate), 0.0
        await session.execute(
            update(RateLimitBucket)
            .where(RateLimitBucket.key == key)
            .values(tokens=tokens, updated_at=max(now, bucket.updated_at))
        )
        await session.commit()
        return decision, tokens, left

    async def _sweep(self, now: datetime) -> None:
        """Every SWEEP_EVERY: forget the buckets full again, and this process's leases that
        expired with nothing left to return."""
        sweeps = self._sweeps
        if sweeps.next_at is not None and sweeps.next_at > now:
            return
        sweeps.next_at = now + SWEEP_EVERY  # before the await: one sweep at a time
        for key, lease in list(sweeps.leases.items()):
            if not lease.valid(now) and not lease.lock.locked():
                del sweeps.leases[key]
        async with self.sessions() as session:
            await forget_full_buckets(session, now=now)

    async def forget(self, *, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int:
        stored = [stored_key(key) for key in keys]
        found: list[ColumnElement[bool]] = [RateLimitBucket.key.in_(stored)]
        found += [
            RateLimitBucket.key.startswith(plain_prefix(prefix), autoescape=True)
            for prefix in prefixes
        ]
        leases = self._sweeps.leases  # this process's; other processes' expire in LEASE_FOR
        for key in list(leases):
            if key in stored or any(key.startswith(prefix) for prefix in prefixes):
                del leases[key]
        async with self.sessions() as session:
            await begin_write(session)
            gone = await session.execute(delete(RateLimitBucket).where(or_(*found)))
            await session.commit()
        return int(gone.rowcount)  # type: ignore[attr-defined]  # a DML result has one

    async def close(self) -> None:
        return None
