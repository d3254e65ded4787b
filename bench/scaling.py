"""Scaling: W1, W1nc, W2 (half-way down the list), W3r and the client card on databases of
several sizes (Config.scales), Clientdesk alone, in one table. Each size is its own database:
the main benchmark's for its size, `<name>_<clients>` for the others; a larger one starts as a
copy of the next smaller one and is seeded the rest of the way (bench/harness.py
`prepare_database`), once. What should stay flat from the smallest to the largest is every
workload but none: W1's total comes from tallies, W2 seeks by cursor, W3r looks up trigrams,
the card reads one client's rows by index.
"""

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench import servers
from bench.harness import (
    Config,
    as_run,
    bench_token,
    card_client,
    deep_position,
    prepare_database,
    say,
    search_terms,
    vacuum,
    warmed_wrk,
)
from bench.workloads import CLIENTDESK, POSTGRAPHILE, Workload, card_workload, read_workloads
from gql.node import to_global_id
from gql.pagination import encode_position

WORKLOADS = ("W1", "W1nc", "W2", "W3r", "card")
FLAT = 0.20  # the largest database's requests/s within 20% of the smallest's


def scale_url(database_url: str, clients: int, config: Config) -> str:
    """The database of `clients` clients: the main benchmark's for its size."""
    if clients == config.clients:
        return database_url
    url = make_url(database_url)
    return url.set(database=f"{url.database}_{clients}").render_as_string(hide_password=False)


def scale_workloads(database_url: str, clients: int) -> list[Workload]:
    depth = clients // 2
    created_at, id_, _ = asyncio.run(deep_position(database_url, depth))
    common, _, rare, _ = asyncio.run(search_terms(database_url, clients))
    deep = {
        CLIENTDESK: encode_position("CREATED_AT:DESC", [created_at], id_),
        POSTGRAPHILE: "",
        "floor": [],
    }
    workloads = read_workloads(deep=deep, depth=depth, common=common, rare=rare)
    card = asyncio.run(card_client(database_url))
    workloads.append(card_workload(card, to_global_id("Client", card)))
    return [w for w in workloads if w.name in WORKLOADS]


def measure_scaling(
    database_url: str, config: Config, logs: Path, redis_url: str | None
) -> list[dict[str, Any]]:
    """One row per (size, workload, connections): the run, and what the workload was."""
    rows: list[dict[str, Any]] = []
    smaller: str | None = None
    for clients in sorted(config.scales):
        url = scale_url(database_url, clients, config)
        say(f"scaling: {clients:,} clients ({make_url(url).database})")
        prepare_database(url, clients, grow_from=smaller)
        smaller = url
        asyncio.run(vacuum(url))  # what earlier runs wrote is cleaned up the same way at each size
        token = bench_token(url)
        workloads = scale_workloads(url, clients)
        server = servers.clientdesk(
            url, port=8102, workers=config.workers, token=token, logs=logs, redis_url=redis_url
        )
        auth = f"Bearer {token}"
        try:
            for connections in config.connections:
                for workload in workloads:
                    body = workload.requests[CLIENTDESK].body
                    answer = servers.post(server.url, body, {"Authorization": auth})
                    if "errors" in answer or not workload.rows(CLIENTDESK, answer):
                        raise RuntimeError(f"scaling {workload.name} at {clients:,}: {answer}")
                    encoded = json.dumps(body)
                    summary = warmed_wrk(
                        server.url, encoded, connections=connections, config=config, auth=auth
                    )
                    run = as_run(summary, workload.name, CLIENTDESK, connections, 1)
                    rows.append({"clients": clients, "title": workload.title, **asdict(run)})
                    say(
                        f"  {clients:,} {workload.name} c={connections}: {run.rps:,.1f} req/s, "
                        f"p99 {run.p99_ms} ms"
                    )
        finally:
            server.stop()
    return rows


def scaling_table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown: per workload and connections, req/s and p99 at each size, and the
    largest size's req/s over the smallest's."""
    sizes = sorted({row["clients"] for row in rows})
    if not sizes:
        return []
    found = {(r["workload"], r["connections"], r["clients"]): r for r in rows}
    header = " | ".join(f"{n:,}: req/s | p99" for n in sizes)
    lines = [
        f"| workload | conns | {header} | {sizes[-1]:,} / {sizes[0]:,} | flat (±{FLAT:.0%}) |",
        "|---|---:|" + "---:|---:|" * len(sizes) + "---:|---|",
    ]
    for connections in sorted({row["connections"] for row in rows}):
        for name in WORKLOADS:
            runs = [found.get((name, connections, n)) for n in sizes]
            if runs[0] is None or runs[-1] is None:
                continue
            cells = " | ".join(
                f"{r['rps']:,.1f} | {r['p99_ms']:,.1f}" if r else "- | -" for r in runs
            )
            ratio = runs[-1]["rps"] / runs[0]["rps"] if runs[0]["rps"] else 0.0
            verdict = "yes" if ratio >= 1 - FLAT else "NO"
            lines.append(f"| {name} | {connections} | {cells} | {ratio:.2f} | {verdict} |")
    return lines
