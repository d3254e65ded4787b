"""What the benchmark's parts share: preparing a database, running wrk and reading its
summary, watching memory, waiting for a run's leftovers, checking the ledger afterwards."""

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import servers
from db.models import Client, CreditEntry
from db.session import create_engine
from gql.clients.filters import phone_digits

ROOT = servers.ROOT
DATA = ROOT / "bench" / ".data"
LUA = ROOT / "bench" / "wrk" / "post.lua"
COMMON_TERM = "nova"  # W3's search text


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
    soak: int  # seconds of W5 with the workers' memory watched
    scales: tuple[int, ...]  # database sizes of the scaling table

    @classmethod
    def full(cls) -> "Config":
        scales = (100_000, 1_000_000, 10_000_000)
        return cls(1_000_000, 500_000, 10, 4, 2, (1, 32), 2, 100_000, 1000, 600, scales)

    @classmethod
    def quick(cls) -> "Config":
        return cls(100_000, 50_000, 3, 2, 2, (1, 32), 2, 20_000, 1000, 30, (20_000, 100_000))


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


async def recreate_postgres(database_url: str, *, template: str | None = None) -> None:
    """Drop and create the database of `database_url` (on the same server), as a copy of the
    database named `template` when given (nobody may be connected to it)."""
    name = make_url(database_url).database
    copy = f' TEMPLATE "{template}"' if template else ""
    async with server_connection(database_url) as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))


async def postgres_exists(database_url: str) -> bool:
    async with server_connection(database_url) as connection:
        found = await connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": make_url(database_url).database},
        )
        return found is not None


def prepare_database(
    database_url: str,
    clients: int,
    *,
    sqlite_file: Path | None = None,
    grow_from: str | None = None,
) -> int:
    """Migrate the database and add demo clients until it has `clients`. A PostgreSQL database
    that does not exist yet starts as a copy of `grow_from` (another database's URL on the same
    server, with fewer clients) when that one exists: 5,000,000 clients are 1,000,000 copied
    and 4,000,000 seeded."""
    if sqlite_file is None and not asyncio.run(postgres_exists(database_url)):
        template = None
        if grow_from is not None and asyncio.run(postgres_exists(grow_from)):
            template = make_url(grow_from).database
            say(f"copying {template} to start {make_url(database_url).database}")
        asyncio.run(recreate_postgres(database_url, template=template))
    clientdesk_cli("migrate", database_url=database_url)
    found = asyncio.run(count_clients(database_url))
    if found < clients:
        say(f"seeding {clients - found:,} demo clients (found {found:,}); this takes a while")
        started = time.monotonic()
        clientdesk_cli("seed-demo", "--clients", str(clients - found), database_url=database_url)
        if sqlite_file is None:  # now, rather than autovacuum in the middle of a measured run
            asyncio.run(vacuum(database_url))
        say(f"seeded in {time.monotonic() - started:.0f} s")
        found = clients
    return found


async def vacuum(database_url: str) -> None:
    """VACUUM (ANALYZE) the whole database: after seeding, the visibility map is set and the
    statistics fresh."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("VACUUM (ANALYZE)"))
    finally:
        await engine.dispose()


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
    sub-accounts, leaving out the clients earlier runs wrote to (their entries say "bench":
    W4's hot client would otherwise be the card's next time)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text(
                    "SELECT p.id FROM clients p WHERE EXISTS "
                    "(SELECT 1 FROM clients s WHERE s.parent_id = p.id) AND NOT EXISTS "
                    "(SELECT 1 FROM credit_entries b WHERE b.client_id = p.id "
                    "AND b.comment = 'bench') ORDER BY "
                    "(SELECT count(*) FROM credit_entries e WHERE e.client_id = p.id) DESC, "
                    "p.id LIMIT 1"
                )
            )
            return int(found)
    finally:
        await engine.dispose()


async def search_terms(database_url: str, clients: int) -> tuple[str, int, str, int]:
    """W3's common term and W3r's rare one (a login's beginning, down to two digits of its id:
    at most 20 clients in a million), with how many clients each matches."""
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

    rare = 20 * max(1, clients // 1_000_000)  # 20 in a million: 200 in 10,000,000
    try:
        async with engine.connect() as connection:
            common = int(await connection.scalar(matching(COMMON_TERM)) or 0)
            for pk in range(clients // 3, clients):
                login = await connection.scalar(select(Client.login).where(Client.id == pk))
                if login is None or "." not in login:
                    continue
                # the name and the id's first two digits (three would match phone numbers)
                term = login[: login.rfind(".") + 3]
                if len(phone_digits(term)) >= 3:  # keep phone numbers out of the match
                    continue
                found = int(await connection.scalar(matching(term)) or 0)
                if 1 <= found <= rare:
                    return COMMON_TERM, common, term, found
        raise RuntimeError("no rare search term found")
    finally:
        await engine.dispose()


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


def warmed_wrk(
    url: str, body: str, *, connections: int, config: Config, auth: str
) -> dict[str, Any]:
    """A warm-up run of `config.warmup` seconds, then the measured one: its summary."""
    wrk(url, body, connections=connections, seconds=config.warmup, auth=auth)
    return wrk(url, body, connections=connections, seconds=config.duration, auth=auth)


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
    """Samples the resident memory of processes every `every` seconds while a run lasts."""

    def __init__(self, pids: list[int], *, every: float = 0.1) -> None:
        self.pids = pids
        self.every = every
        self.samples: list[tuple[float, dict[int, int]]] = []  # (seconds since start, KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            sample = {}
            for pid in self.pids:
                with contextlib.suppress(OSError):
                    sample[pid] = servers.rss_kib(pid)
            self.samples.append((time.monotonic() - started, sample))
            self._stop.wait(self.every)

    @property
    def peaks(self) -> dict[int, int]:
        """Each process's highest sample (KiB)."""
        return {pid: max((s.get(pid, 0) for _, s in self.samples), default=0) for pid in self.pids}

    def at(self, seconds: float) -> dict[int, int]:
        """The first sample taken at or after `seconds`."""
        return next((s for t, s in self.samples if t >= seconds), self.samples[-1][1])

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


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


async def last_entry_and_clients(
    database_url: str, count: int, *, funded: Decimal = Decimal(0)
) -> tuple[int, list[int]]:
    """The last ledger entry's id, and the first `count` ACTIVE clients, not blocked, holding
    at least `funded` (no money mutation refuses them)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            last = int(await connection.scalar(select(func.max(CreditEntry.id))) or 0)
            ids = (
                await connection.scalars(
                    select(Client.id)
                    .where(
                        Client.status == "ACTIVE",
                        Client.blocked_at.is_(None),
                        Client.balance >= funded,
                    )
                    .order_by(Client.id)
                    .limit(count)
                )
            ).all()
        return last, list(ids)
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


def redis_available() -> str | None:
    if shutil.which("redis-cli") is None:
        return None
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True, text=True, check=False
    )
    return "redis://127.0.0.1:6379/0" if done.stdout.strip() == "PONG" else None
