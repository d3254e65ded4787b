"""The clients CSV export of a whole database (1,000,000 clients in the bench database): its
time, rows a second, and the server's memory while it streams — peak RSS (VmHWM) of the
`clientdesk serve` process against its RSS before the download. Sorted two ways: newest
first (the default), and by balance with the login after it.

    .venv/bin/python -m bench.export --database-url postgresql+asyncpg://…/clientdesk_bench
"""

import argparse
import socket
import tempfile
import time
from pathlib import Path

import httpx

from bench import servers
from bench.harness import bench_token, say

ORDERS = {
    "newest first": None,
    "BALANCE DESC, LOGIN": [{"field": "BALANCE", "direction": "DESC"}, {"field": "LOGIN"}],
}


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    token = bench_token(args.database_url)
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = servers.clientdesk(
        args.database_url,
        port=port,
        workers=1,
        token=token,
        logs=Path(tempfile.mkdtemp(prefix="bench-export-")),
        redis_url=None,
    )
    base = server.url.removesuffix("/graphql")
    lines = [
        "| CSV export, all clients | rows | MB | seconds | rows/s | RSS before MB | "
        "peak RSS MB | growth MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        pid = server.process.pid
        for label, order in ORDERS.items():
            before = memory_kib(pid, "VmRSS")
            started = time.perf_counter()
            rows = size = 0
            arguments = {"orderBy": order} if order else {}
            with (
                httpx.Client(timeout=None) as http,
                http.stream(
                    "POST",
                    f"{base}/export/clients.csv",
                    json=arguments,
                    headers={"Authorization": f"Bearer {token}"},
                ) as response,
            ):
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    rows += chunk.count(b"\n")
            took = time.perf_counter() - started
            peak = memory_kib(pid, "VmHWM")
            rows -= 1  # the header
            say(f"{label}: {rows:,} rows in {took:.1f} s")
            lines.append(
                f"| {label} | {rows:,} | {size / 1e6:.0f} | {took:.1f} | {rows / took:,.0f} | "
                f"{before / 1024:.0f} | {peak / 1024:.0f} | {(peak - before) / 1024:.0f} |"
            )
    finally:
        server.stop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
