"""Real server processes on loopback, started as operators start them (`clientdesk serve`)."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from db.enums import StaffRole, TokenKind
from db.models import Client, StaffUser
from db.session import create_engine, create_sessionmaker
from services.auth import issue_token
from tests.logcheck import COLLECTOR

CLIENTDESK = str(Path(sys.executable).parent / "clientdesk")
STARTED = "Application startup complete"  # a worker's app is ready
LISTENING = " running on http"  # the socket is bound (one worker: after its startup)
CLEAN_EXIT = {0, -signal.SIGTERM}
SEEDED_AT = datetime(2026, 6, 1, tzinfo=UTC)  # API tokens do not expire
# What an unhandled exception leaves in a server's log, whatever logged it.
FAILURE_MARKERS = (
    "resolver_failed",  # gql/errors.py ErrorMasking: a resolver raised
    "background_jobs_failed",  # gql/app.py: the outbox / idempotency loop raised
    "Traceback",
    "Exception in ASGI application",  # uvicorn: the app raised past Starlette
    "Task exception was never retrieved",  # asyncio
)
ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})
CONSOLE_LEVEL = re.compile(r"\[(error|critical|exception)\s*\]", re.IGNORECASE)


def is_failure(line: str) -> bool:
    """Whether a server log line tells of an unexpected error: a known marker, or any line at
    level error or critical (JSON lines, or the console format)."""
    if any(marker in line for marker in FAILURE_MARKERS):
        return True
    if line.startswith("{"):
        try:
            event = json.loads(line)
        except ValueError:
            return False
        return isinstance(event, dict) and str(event.get("level", "")).lower() in ERROR_LEVELS
    return CONSOLE_LEVEL.search(line) is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """One `clientdesk serve` and its log (JSON lines on standard error)."""

    url: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    started_by: str | None = None  # the test that started it (tests/logcheck.py)

    @property
    def graphql(self) -> str:
        return f"{self.url}/graphql"

    def failures(self) -> list[str]:
        """Log lines of unexpected errors (masked for callers, logged in full here)."""
        return [line for line in self.log if is_failure(line)]

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a process manager stops it; its exit status (uvicorn ends a graceful
        stop by raising the signal it caught again: -SIGTERM is a clean exit, as is 0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout)
        if self.reader is not None:
            self.reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return status


def start_server(
    database_url: str, environment: dict[str, str], *, workers: int = 1
) -> ServerProcess:
    """Start a server on a free port and wait until it has started (or failed to)."""
    port = free_port()
    process = subprocess.Popen(
        [CLIENTDESK, "serve", "--workers", str(workers)],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "CLIENTDESK_PORT": str(port),
            "CLIENTDESK_MAIL_SENDER": "false",
            "CLIENTDESK_LOG_LEVEL": "INFO",
            # cheap hashes, as in-process tests use (tests/conftest.py): staffLogin is fuzzed
            "CLIENTDESK_PASSWORD_HASH_TIME_COST": "1",
            "CLIENTDESK_PASSWORD_HASH_MEMORY_KIB": "1024",
            "CLIENTDESK_PASSWORD_HASH_PARALLELISM": "1",
            **environment,
        },
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, started_by=COLLECTOR.current)
    started = threading.Event()
    workers_started = 0

    listening = False

    def read_log() -> None:
        nonlocal workers_started, listening
        assert process.stderr is not None
        for line in process.stderr:
            server.log.append(line)
            if is_failure(line):  # the test running now errors at teardown (tests/logcheck.py)
                COLLECTOR.add_line(server.url, line, started_by=server.started_by)
            workers_started += STARTED in line
            listening = listening or LISTENING in line
            if workers_started >= workers and listening:
                started.set()
        started.set()  # the process ended: let the caller see it

    server.reader = threading.Thread(target=read_log, daemon=True)
    server.reader.start()
    if not started.wait(60) or process.poll() is not None:
        server.stop()
        raise AssertionError("the server did not start:\n" + "".join(server.log))
    return server


@dataclass
class Seeded:
    admin_id: int
    tokens: list[str]  # the admin's API tokens
    client_id: int  # a EUR client with nothing on its ledger


async def seed_admin_and_client(database_url: str, *, tokens: int = 1) -> Seeded:
    """An admin with `tokens` API tokens, and one client, committed."""
    engine = create_engine(database_url)
    async with create_sessionmaker(engine)() as session:
        admin = StaffUser(email="ops@example.com", name="Ops", role=StaffRole.ADMIN)
        client = Client(
            login="shared",
            password_hash="x",
            email="shared@example.com",
            currency="EUR",
            balance=Decimal(0),
            credit_limit=Decimal(0),
            created_at=SEEDED_AT,
            updated_at=SEEDED_AT,
        )
        session.add_all([admin, client])
        await session.flush()
        issued = [
            await issue_token(session, staff=admin, kind=TokenKind.API, name=f"t{n}", now=SEEDED_AT)
            for n in range(tokens)
        ]
        seeded = Seeded(admin.id, [token.token for token in issued], client.id)
        await session.commit()
    await engine.dispose()
    return seeded


def worker_pids(server: ServerProcess) -> list[int]:
    """The server's worker processes: the children of `clientdesk serve --workers N`."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if "spawn" in _cmdline(int(child))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def established_connections(pids: list[int], port: int) -> dict[int, int]:
    """How many established TCP connections to `port` each process holds (from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    held = {}
    for pid in pids:
        sockets = []
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                sockets.append(os.readlink(descriptor))
        held[pid] = sum(target.removeprefix("socket:[").rstrip("]") in inodes for target in sockets)
    return held
