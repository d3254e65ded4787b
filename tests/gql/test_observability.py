"""What operators see: Prometheus metrics at /metrics, and OpenTelemetry spans when on."""

import asyncio
import gc
import time
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clientdesk import metrics
from clientdesk.metrics import MAX_OPERATION_NAMES, operation_label
from clientdesk.settings import Settings
from gql.app import GC_THRESHOLDS, create_app
from tests.api import GraphQLClient
from tests.conftest import FakeClock
from tests.factories import Factory

CLIENTS = "query ObservedClients { clients(first: 2) { nodes { login } } }"
VIEWER = "query ObservedViewer { viewer { email } }"
# a field below the list with a resolver of its own (totalCount): on graphql-core's executor
AUDIT = "query ObservedAudit { auditLog(first: 1) { totalCount } }"
INVALID = "query ObservedInvalid { noSuchField }"
LOGIN = 'mutation ObservedLogin { staffLogin(email: "x@example.com", password: "%s") { token } }'


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_count_requests_by_operation_outcome_and_error_code(
    api: GraphQLClient, http: httpx.AsyncClient, factory: Factory
) -> None:
    # given a few clients and a token
    await factory.client(login="first")
    await factory.client(login="second")
    api.token = await factory.admin_token()
    before = await scrape(http)
    # when a list page is read twice (the second time on the compiled path), the viewer once,
    # and an invalid query is sent
    for _ in range(2):
        assert len((await api(CLIENTS))["clients"]["nodes"]) == 2
    await api(VIEWER)
    assert (await api.errors(INVALID))[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    after = await scrape(http)
    # then the counters moved by exactly that
    requests = "clientdesk_graphql_requests_total"
    assert delta(before, after, requests, operation="ObservedClients", outcome="ok") == 2
    assert delta(before, after, requests, operation="ObservedViewer", outcome="ok") == 1
    assert delta(before, after, requests, operation="ObservedInvalid", outcome="rejected") == 1
    errors = "clientdesk_graphql_errors_total"
    assert delta(before, after, errors, code="GRAPHQL_VALIDATION_FAILED") == 1
    latency = "clientdesk_graphql_request_duration_seconds_count"
    assert delta(before, after, latency, operation="ObservedClients") == 2
    slowest = "clientdesk_graphql_request_duration_seconds_bucket"
    assert delta(before, after, slowest, operation="ObservedClients", le="+Inf") == 2
    # and every request gave its connection back
    in_use = ("clientdesk_db_connections_in_use", frozenset())
    assert after[in_use] == before[in_use]


async def test_unnamed_operations_and_unknown_names_are_counted_without_their_names(
    api: GraphQLClient, http: httpx.AsyncClient, factory: Factory
) -> None:
    api.token = await factory.admin_token()
    before = await scrape(http)
    await api("{ viewer { email } }")
    unknown = await api.http.post(
        "/graphql",
        json={"query": "{ viewer { email } }", "operationName": "NoSuchOperation"},
        headers={"Authorization": f"Bearer {api.token}"},
    )
    after = await scrape(http)
    assert unknown.status_code == 400
    requests = "clientdesk_graphql_requests_total"
    assert delta(before, after, requests, operation="anonymous", outcome="ok") == 1
    assert delta(before, after, requests, operation="anonymous", outcome="rejected") == 1


def test_operation_labels_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_operation_names", set())  # other tests' names stay
    assert operation_label(None) == "anonymous"
    assert operation_label("ClientsPage") == "ClientsPage"
    assert operation_label("not a name!") == "invalid"
    assert operation_label("x" * 65) == "invalid"
    # a request without a valid token adds no name of its own
    assert operation_label("Untrusted", trusted=False) == "other"
    assert operation_label("ClientsPage", trusted=False) == "ClientsPage"
    flood = [operation_label(f"Flood{n}") for n in range(MAX_OPERATION_NAMES + 1)]
    assert flood[-1] == "other"
    assert operation_label("ClientsPage") == "ClientsPage"  # names seen before stay


async def test_metrics_can_require_a_token(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
) -> None:
    guarded = settings.model_copy(update={"metrics_token": SecretStr("scrape-secret")})
    app = create_app(guarded, engine=engine, sessionmaker=sessionmaker, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics.test") as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        odd = await http.get("/metrics", headers={"Authorization": "Bearer é".encode("latin-1")})
        assert odd.status_code == 401
        samples = await scrape(http, Authorization="Bearer scrape-secret")
    assert any(name.startswith("clientdesk_") for name, _ in samples)


async def test_tracing_spans_each_request_without_what_the_caller_sent(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
    factory: Factory,
) -> None:
    # given tracing into memory
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = create_app(
        settings, engine=engine, sessionmaker=sessionmaker, clock=clock, tracer_provider=provider
    )
    token = await factory.admin_token()
    await factory.client(login="traced")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://traced.test") as http:
        api = GraphQLClient(http)
        # when a list page is read (on the compiled path), the audit log (on the executor),
        # and a sign-in is sent with its password written into the query
        await api(CLIENTS, token=token)
        await api(AUDIT, token=token)
        await api(LOGIN % "hunter2-is-secret")
    # then each request has its HTTP span
    finished = spans.get_finished_spans()
    requests = [span for span in finished if span.name == "POST /graphql"]
    assert [(span.attributes or {}).get("graphql.operation.name") for span in requests] == [
        "ObservedClients",
        "ObservedAudit",
        "ObservedLogin",
    ]
    assert all((span.attributes or {}).get("http.response.status_code") == 200 for span in requests)
    # and on the executor the operation's span is below it, and the resolvers' below that
    operation = next(span for span in finished if span.name == "GraphQL Query: ObservedAudit")
    assert operation.parent is not None
    assert operation.parent.span_id == requests[1].context.span_id
    resolver = next(span for span in finished if span.name == "GraphQL Resolving: auditLog")
    assert resolver.parent is not None
    assert resolver.parent.span_id == operation.context.span_id
    # and no span holds the query text or an argument
    values: list[Any] = [value for span in finished for value in (span.attributes or {}).values()]
    assert not any("hunter2" in str(value) for value in values)
    assert not any(
        key.startswith("graphql.param.") or key == "query"
        for span in finished
        for key in (span.attributes or {})
    )


LAG = "clientdesk_event_loop_lag_seconds"


async def test_the_event_loop_lag_is_how_late_a_sleeper_wakes(http: httpx.AsyncClient) -> None:
    # given a clock, and a loop that is held by other work for 0.25 s during the second sleep
    now = [0.0]
    held = [0.0, 0.25]

    async def sleep(seconds: float) -> None:
        now[0] += seconds + held.pop(0)

    before = await scrape(http)
    # when the watcher measures twice
    await metrics.watch_event_loop(interval=0.1, clock=lambda: now[0], sleep=sleep, measures=2)
    after = await scrape(http)
    # then /metrics has two more measures, one of them late by the 0.25 s
    assert delta(before, after, f"{LAG}_count") == 2
    assert delta(before, after, f"{LAG}_sum") == pytest.approx(0.25)
    assert delta(before, after, f"{LAG}_bucket", le="0.1") == 1
    assert delta(before, after, f"{LAG}_bucket", le="0.25") == 2
    assert after[("clientdesk_event_loop_lag_last_seconds", frozenset())] == pytest.approx(0.25)


async def test_a_blocking_call_shows_as_event_loop_lag() -> None:
    # given the watcher asleep on the real loop
    watcher = asyncio.create_task(metrics.watch_event_loop(interval=0.001, measures=1))
    await asyncio.sleep(0)  # it starts, and sleeps
    # when the loop is held by CPU work for a measured time
    started = time.perf_counter()
    while time.perf_counter() - started < 0.05:
        pass
    held = time.perf_counter() - started
    await watcher
    # then the watcher woke at least that much late (less its own interval)
    lag = REGISTRY.get_sample_value("clientdesk_event_loop_lag_last_seconds")
    assert lag is not None
    assert lag >= held - 0.001


async def test_each_worker_watches_its_event_loop_while_it_serves(app: Any) -> None:
    thresholds = gc.get_threshold()

    def watching() -> bool:
        return any(
            getattr(task.get_coro(), "__name__", "") == "watch_event_loop"
            for task in asyncio.all_tasks()
        )

    assert not watching()
    try:
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0)  # the lifespan's tasks start
            assert watching()
            # and what startup built is out of the collector's sight, which runs less often
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == GC_THRESHOLDS
    finally:  # the test process's collector as it was
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert not watching()
