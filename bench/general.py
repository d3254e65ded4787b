"""The general read path, Clientdesk alone: `{ __typename }` through the whole stack (the
floor of a Python server here), `{ viewer { id } }`, `{ client(id) { login name } }` and the
client card (bench/workloads.py CARD) and the list page (W1nc), each with wrk at 1 and 32
connections on a database seeded by bench/run.py or `clientdesk seed-demo`.

    .venv/bin/python -m bench.general --database-url postgresql+asyncpg://…/clientdesk_bench_quick

The card's client is the one with the most ledger entries among those with sub-accounts
(or --client). `--compare DIR` (repeatable) also starts a server running the code in DIR
(another checkout of the project, e.g. `git worktree add /tmp/before main`): the servers take
turns, round by round, so that a busy machine weighs on all of them alike.
"""

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench import servers
from bench.harness import bench_token, card_client, redis_available, say, wrk
from bench.workloads import general_workloads
from gql.node import to_global_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--client", type=int, default=None, help="the card's client (pk)")
    parser.add_argument("--only", default=None, help="comma-separated workloads")
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8150)
    parser.add_argument(
        "--compare", action="append", default=[], help="also run the checkout in DIR"
    )
    parser.add_argument("--no-redis", action="store_true", help="the database rate limiter")
    args = parser.parse_args()
    url = args.database_url
    client = args.client or asyncio.run(card_client(url))
    workloads = general_workloads(to_global_id("Client", client))
    if args.only:
        workloads = {k: v for k, v in workloads.items() if k in args.only.split(",")}
    token = bench_token(url)
    auth = f"Bearer {token}"
    logs = Path(tempfile.mkdtemp(prefix="bench-general-"))
    checkouts = {"this": None, **{Path(d).name: d for d in args.compare}}
    running: dict[str, servers.Server] = {}
    results: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    try:
        for n, (label, directory) in enumerate(checkouts.items()):
            os.environ.pop("PYTHONPATH", None)
            if directory:
                os.environ["PYTHONPATH"] = str(Path(directory).resolve())
            running[label] = servers.clientdesk(
                url,
                port=args.port + n,
                workers=args.workers,
                token=token,
                logs=logs,
                redis_url=None if args.no_redis else redis_available(),
            )
        os.environ.pop("PYTHONPATH", None)
        for label, server in running.items():  # every answer is one without errors
            for name, body in workloads.items():
                answer = servers.post(server.url, body, {"Authorization": auth})
                if answer.get("errors"):
                    raise RuntimeError(f"{label} {name}: {answer['errors']}")
        for connections in map(int, args.connections.split(",")):
            for name, body in workloads.items():
                encoded = json.dumps(body)
                for server in running.values():  # warm-up
                    wrk(server.url, encoded, connections=connections, seconds=2, auth=auth)
                for round_ in range(args.rounds):
                    labels = list(running)
                    for label in labels[round_ % len(labels) :] + labels[: round_ % len(labels)]:
                        summary = wrk(
                            running[label].url,
                            encoded,
                            connections=connections,
                            seconds=args.seconds,
                            auth=auth,
                        )
                        run = {
                            "rps": summary["requests"] / (summary["duration_us"] / 1e6),
                            "p50": summary["p50_us"] / 1000,
                            "p99": summary["p99_us"] / 1000,
                        }
                        results.setdefault((name, label, connections), []).append(run)
                        say(
                            f"  {name} c={connections} {label}: {run['rps']:,.0f} req/s, "
                            f"p50 {run['p50']:.2f} ms, p99 {run['p99']:.2f} ms"
                        )
    finally:
        for server in running.values():
            server.stop()
    print(f"client {client}, {args.workers} workers each, {args.seconds} s x {args.rounds} rounds")
    print("| request | connections | server | req/s (median round) | p50 ms | p99 ms |")
    print("|---|---:|---|---:|---:|---:|")
    for (name, label, connections), runs in results.items():
        middle = sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]
        print(
            f"| {name} | {connections} | {label} | {middle['rps']:,.0f} | "
            f"{middle['p50']:.2f} | {middle['p99']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
