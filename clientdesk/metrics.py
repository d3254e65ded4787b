"""Prometheus metrics, scraped at /metrics: what an operator graphs and alerts on.

One process keeps its values in memory. Under `clientdesk serve --workers N` every worker
writes its values to files in PROMETHEUS_MULTIPROC_DIR (`serve` makes that folder before the
workers start), and /metrics adds up every worker's: a scrape sees the whole server, whichever
worker answers it. Separate replicas are scraped one by one, as Prometheus does.
"""

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
OUTCOMES = ("ok", "error", "rejected", "rate_limited")

GRAPHQL_REQUESTS = Counter(
    "clientdesk_graphql_requests",
    "GraphQL requests by operation name and outcome: ok; error (the response has errors, a "
    "partial result included); rejected (nothing ran: malformed, invalid, too large or too "
    "costly); rate_limited (HTTP 429).",
    ["operation", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "clientdesk_graphql_request_duration_seconds",
    "Time to answer a GraphQL request, from its first byte to its last, by operation name.",
    ["operation"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GRAPHQL_ERRORS = Counter(
    "clientdesk_graphql_errors",
    "Errors in GraphQL responses by `extensions.code`; INTERNAL_SERVER_ERROR counts resolvers "
    "that failed unexpectedly (each logged with its request id).",
    ["code"],
)
RATE_LIMIT_REFUSALS = Counter(
    "clientdesk_rate_limit_refusals",
    "Requests refused by a rate limit: token (a token's points per minute) or login "
    "(sign-in attempts per account or address).",
    ["limit"],
)
DB_CONNECTIONS_IN_USE = Gauge(
    "clientdesk_db_connections_in_use",
    "Database connections held by requests and background jobs right now.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "clientdesk_db_pool_size",
    "Connections the pools keep open at most (CLIENTDESK_DB_POOL_SIZE per process on "
    "PostgreSQL), all processes together.",
    multiprocess_mode="livesum",
)

# The event loop's lag: a task in each worker sleeps LAG_INTERVAL, again and again, and
# records how much later than asked it woke. A request's await waits at least as long; lag is
# CPU work (or a blocking call) holding the loop, the usual cause of a tail in p99.
LAG_INTERVAL = 0.1
EVENT_LOOP_LAG = Histogram(
    "clientdesk_event_loop_lag_seconds",
    f"How late a worker's event loop woke a task that slept {LAG_INTERVAL} s (every "
    f"{LAG_INTERVAL} s): time it spent running other work, which every request waiting on "
    "it waited too.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENT_LOOP_LAG_LAST = Gauge(
    "clientdesk_event_loop_lag_last_seconds",
    "The event loop's lag at its latest measure (the largest of the live workers').",
    multiprocess_mode="livemax",
)


def observe_lag(seconds: float) -> None:
    """Record one measure of the event loop's lag."""
    EVENT_LOOP_LAG.observe(seconds)
    EVENT_LOOP_LAG_LAST.set(seconds)


async def watch_event_loop(
    *,
    interval: float = LAG_INTERVAL,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    measures: int | None = None,
) -> None:
    """Sleep `interval`, record how late the wake came, again (`measures` times, or until
    cancelled: the app's lifespan runs one per worker)."""
    done = 0
    while measures is None or done < measures:
        started = clock()
        await sleep(interval)
        observe_lag(max(0.0, clock() - started - interval))
        done += 1


GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")  # a GraphQL name, 64 at most
MAX_OPERATION_NAMES = 200
_operation_names: set[str] = set()


def operation_label(name: str | None, *, trusted: bool = True) -> str:
    """The operation's name as a label value. Callers choose names, so a name that is not a
    GraphQL name is "invalid"; only requests with a valid token add new names (others get
    "other" for a name not seen yet), and past 200 distinct names a process says "other"."""
    if not name:
        return "anonymous"
    if name in _operation_names:
        return name
    if not GRAPHQL_NAME.fullmatch(name):
        return "invalid"
    if not trusted or len(_operation_names) >= MAX_OPERATION_NAMES:
        return "other"
    _operation_names.add(name)
    return name


def observe_graphql(
    *,
    operation: str | None,
    trusted: bool,
    outcome: str,
    error_codes: list[str] | tuple[str, ...],
    seconds: float,
) -> None:
    label = operation_label(operation, trusted=trusted)
    GRAPHQL_REQUESTS.labels(label, outcome).inc()
    GRAPHQL_DURATION.labels(label).observe(seconds)
    for code in error_codes:
        GRAPHQL_ERRORS.labels(code).inc()
    if outcome == "rate_limited":
        RATE_LIMIT_REFUSALS.labels("token").inc()


def instrument_pool(engine: AsyncEngine) -> None:
    """Count the engine's connections in use (once per engine, whatever calls this)."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_clientdesk_instrumented", False):
        return
    sync_engine._clientdesk_instrumented = True  # type: ignore[attr-defined]  # our marker
    pool = engine.pool
    size = getattr(pool, "size", None)
    DB_POOL_SIZE.inc(size() if callable(size) else 0)
    out = getattr(pool, "checkedout", None)  # held already (tests hand over their engine)
    DB_CONNECTIONS_IN_USE.inc(out() if callable(out) else 0)

    @event.listens_for(sync_engine, "checkout")
    def _checkout(*_: Any) -> None:
        DB_CONNECTIONS_IN_USE.inc()

    @event.listens_for(sync_engine, "checkin")
    def _checkin(*_: Any) -> None:
        DB_CONNECTIONS_IN_USE.dec()


def process_ended() -> None:
    """A worker that stops takes its live gauges (connections, pool size) out of the sums;
    its counters stay in the totals."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def exposition() -> tuple[bytes, str]:
    """The scrape: this process's metrics, or every worker's under `serve --workers`."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
