"""`clientdesk serve` as operators run it: several workers behind one port with one /metrics
and a JSON log line per request, and a graceful stop that lets the requests in flight finish."""

import asyncio
import base64
import contextlib
import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from db.session import create_engine
from tests.conftest import POSTGRES_URL, ScratchDatabases, backends_until
from tests.servers import (
    CLEAN_EXIT,
    STARTED,
    established_connections,
    seed_admin_and_client,
    start_server,
    worker_pids,
)

ADD = """
mutation Pay($input: CreditAddInput!) {
  creditAdd(input: $input) { entry { amount { amount } } userErrors { code } }
}
"""
CLIENTS = "query WorkersPage { clients(first: 5) { nodes { login } } }"


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def test_workers_share_one_metrics_endpoint_and_log_each_request(tmp_path: Path) -> None:
    # given a server with two workers
    scratch = ScratchDatabases("sqlite", tmp_path)
    url = await scratch.create()
    seeded = await seed_admin_and_client(url)
    server = await asyncio.to_thread(start_server, url, {}, workers=2)
    engine = create_engine(url)
    pool_size = engine.pool.size()  # type: ignore[attr-defined]  # a QueuePool's
    await engine.dispose()
    try:
        headers = {"Authorization": f"Bearer {seeded.tokens[0]}", "X-Request-ID": "req-workers"}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            # when 12 requests go to whichever worker takes them (a connection each)
            for _ in range(12):
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as one:
                    response = await one.post("/graphql", json={"query": CLIENTS}, headers=headers)
                    assert response.json()["data"]["clients"]["nodes"] == [{"login": "shared"}]
            # then every scrape, whichever worker answers it, counts all 12
            for _ in range(3):
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as one:
                    scraped = samples((await one.get("/metrics")).text)
                requests = (
                    "clientdesk_graphql_requests_total",
                    frozenset({("operation", "WorkersPage"), ("outcome", "ok")}),
                )
                assert scraped[requests] == 12
                assert scraped[("clientdesk_db_pool_size", frozenset())] == 2 * pool_size
            assert (await http.get("/readyz")).status_code == 200
    finally:
        status = await asyncio.to_thread(server.stop)
        await scratch.drop_all()
    assert status in CLEAN_EXIT
    # and each request has one JSON log line with its id, operation, viewer and duration
    lines = [json.loads(line) for line in server.log if line.startswith("{")]
    logged = [
        line for line in lines if line.get("event") == "request" and line["path"] == "/graphql"
    ]
    assert len(logged) == 12
    assert {line["request_id"] for line in logged} == {"req-workers"}
    assert {line["operation"] for line in logged} == {"WorkersPage"}
    assert {line["viewer_id"] for line in logged} == {1}
    assert all(line["status"] == 200 and line["duration_ms"] > 0 for line in logged)
    assert server.failures() == []


async def test_each_worker_gets_its_share_of_the_connections(tmp_path: Path) -> None:
    # given a server with two workers
    scratch = ScratchDatabases("sqlite", tmp_path)
    url = await scratch.create()
    seeded = await seed_admin_and_client(url)
    server = await asyncio.to_thread(start_server, url, {}, workers=2)
    headers = {"Authorization": f"Bearer {seeded.tokens[0]}"}
    try:
        async with contextlib.AsyncExitStack() as stack:
            # when 8 keep-alive connections open at once, as a load balancer's pool does
            clients = [
                await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=30))
                for _ in range(8)
            ]
            answers = await asyncio.gather(
                *(c.post("/graphql", json={"query": CLIENTS}, headers=headers) for c in clients)
            )
            assert all(a.json()["data"]["clients"]["nodes"] for a in answers)
            # then each worker holds half of them (one socket shared by the workers gave
            # all of a burst to whichever woke first)
            workers = worker_pids(server)
            held = established_connections(workers, int(server.url.rsplit(":", 1)[1]))
            assert len(workers) == 2
            assert sorted(held.values()) == [4, 4]
            # and a worker that dies is replaced, and the server goes on answering
            os.kill(workers[0], signal.SIGKILL)
            started = sum(STARTED in line for line in server.log)
            for _ in range(600):  # until the replacement's startup is logged (at most 30 s)
                if sum(STARTED in line for line in server.log) > started:
                    break
                await asyncio.sleep(0.05)
            assert len(worker_pids(server)) == 2
            for _ in range(4):
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as one:
                    answer = await one.post("/graphql", json={"query": CLIENTS}, headers=headers)
                    assert answer.json()["data"]["clients"]["nodes"] == [{"login": "shared"}]
    finally:
        status = await asyncio.to_thread(server.stop)
        await scratch.drop_all()
    assert status in CLEAN_EXIT


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (TEST_DATABASE_URL)")
@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path, workers: int) -> None:
    # given a server, and a client whose row another transaction holds locked
    scratch = ScratchDatabases("postgresql", tmp_path)
    url = await scratch.create()
    seeded = await seed_admin_and_client(url)
    server = await asyncio.to_thread(start_server, url, {}, workers=workers)
    engine = create_engine(url)
    try:
        async with engine.connect() as holder, engine.connect() as watcher:
            await holder.execute(
                text("SELECT id FROM clients WHERE id = :id FOR UPDATE"), {"id": seeded.client_id}
            )
            # when a credit arrives (and waits for that lock)
            client = base64.b64encode(f"Client:{seeded.client_id}".encode()).decode()
            variables = {"input": {"clientId": client, "amount": "12.50", "paymentMethod": "CASH"}}
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                in_flight = asyncio.create_task(
                    http.post(
                        "/graphql",
                        json={"query": ADD, "variables": variables},
                        headers={"Authorization": f"Bearer {seeded.tokens[0]}"},
                    )
                )
                waiting = await backends_until(
                    watcher, "wait_event_type = 'Lock'", lambda count: count > 0
                )
                assert waiting == 1
                # and the server is told to stop while it waits
                server.process.terminate()
                # then it takes no new connections
                refused = False
                for _ in range(2000):
                    try:
                        async with httpx.AsyncClient(base_url=server.url, timeout=5) as late:
                            await late.get("/healthz")
                    except httpx.TransportError:  # refused, or cut before an answer
                        refused = True
                        break
                assert refused
                # and when the lock is released the request in flight gets its answer
                await holder.commit()
                response = await in_flight
        assert response.status_code == 200
        payload = response.json()["data"]["creditAdd"]
        assert payload == {"entry": {"amount": {"amount": "12.50"}}, "userErrors": []}
    finally:
        await engine.dispose()
        status = await asyncio.to_thread(server.stop)
        await scratch.drop_all()
    # and then the server exits cleanly
    assert status in CLEAN_EXIT
    assert server.failures() == []


async def test_a_request_head_is_bounded(tmp_path: Path) -> None:
    # given a server, and a client that sends a request line that never ends
    scratch = ScratchDatabases("sqlite", tmp_path)
    url = await scratch.create()
    server = await asyncio.to_thread(start_server, url, {})
    host, port = server.url.removeprefix("http://").split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /graphql?query=")
        sent = 0
        answer = b""
        # when it keeps sending (up to 8 MiB)
        with contextlib.suppress(ConnectionError):
            while sent < 8 * 2**20 and not reader.at_eof():
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
                with contextlib.suppress(TimeoutError):
                    answer += await asyncio.wait_for(reader.read(4096), 0.001)
            answer += await asyncio.wait_for(reader.read(), 30)
        writer.close()
        # then the server answered 431 and closed the connection long before
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
        assert sent < 2 * 2**20
        # and serves the next request as usual
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 200
            long_url = await http.get("/healthz", params={"q": "x" * 30_000})
            assert long_url.status_code == 200
    finally:
        assert await asyncio.to_thread(server.stop) in CLEAN_EXIT
        await scratch.drop_all()
