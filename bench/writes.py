"""Writes: W4 (`creditAdd`) on one hot client and on many beside its SQL floor, the other
money mutations measured the same way, W5 (a mix of reads and writes) and the soak that
watches the workers' memory under it."""

import asyncio
import json
import time
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bench import servers
from bench.floor import write_floor
from bench.harness import (
    Config,
    MemoryWatch,
    as_run,
    last_entry_and_clients,
    quiesce,
    say,
    settled,
    wrk,
)
from bench.workloads import CLIENTDESK, mixed_templates, money_templates
from db.models import StaffUser
from db.session import create_engine
from gql.node import to_global_id

FUNDED = Decimal(100)  # the clients written to hold this much, so that no deduction is refused


def _probe(url: str, auth: str, template: str, client: str) -> None:
    """Send one of a run's bodies once: a run of refusals would measure nothing."""
    body = json.loads(
        template.replace("@CLIENT@", client).replace("@KEY@", f"probe-{time.time_ns()}")
    )
    answer = servers.post(url, body, {"Authorization": auth})
    payloads = [v for v in (answer.get("data") or {}).values() if isinstance(v, dict)]
    if answer.get("errors") or any(p.get("userErrors") for p in payloads):
        raise RuntimeError(f"probe of {body['query'][:40]!r} failed: {answer}")


def measure_write(
    url: str,
    database_url: str,
    auth: str,
    config: Config,
    *,
    workload: str,
    templates: list[str],
    count: int,
    connections: int,
    seconds: int,
    entries_per_request: bool,
) -> dict[str, Any]:
    """One run of `templates` (taken in turn) on `count` funded ACTIVE clients, then the
    ledger checked once what was in flight has landed. `entries_per_request`: each answered
    request wrote exactly one ledger entry (a money mutation alone), checked."""
    quiesce(database_url, grace=60)
    since, pks = asyncio.run(last_entry_and_clients(database_url, count, funded=FUNDED))
    clients = [to_global_id("Client", pk) for pk in pks]
    for template in templates:
        _probe(url, auth, template, clients[0])
    summary = wrk(
        url,
        "\n".join(templates),
        connections=connections,
        seconds=seconds,
        auth=auth,
        unique=True,
        clients=clients,
    )
    run = as_run(summary, workload, CLIENTDESK, connections, 1)
    written, wrong = settled(database_url, since)
    answered = run.requests + len(templates)  # wrk's, and the probes
    if entries_per_request and not answered <= written <= answered + connections:
        raise RuntimeError(f"{workload}: {written} entries for {answered} answers")
    return {
        **asdict(run),
        "entries_written": written,
        "requests_answered": answered,
        "in_flight_at_the_end": written - answered if entries_per_request else None,
        "balances_off_ledger": wrong,
    }


def measure_w4(
    url: str, database_url: str, token: str, config: Config, many: int, *, floor_too: bool = True
) -> list[dict[str, Any]]:
    """creditAdd with a new idempotency key per request: one hot client, and many clients
    (then the SQL floor of the same statements on the same clients, on PostgreSQL); then the
    other money mutations on the many clients, the same way."""
    results = []
    auth = f"Bearer {token}"
    money = money_templates()
    runs = [("creditAdd", "one hot client", 1), ("creditAdd", f"{many:,} clients", many)]
    runs += [(name, f"{many:,} clients", many) for name in money if name != "creditAdd"]
    for mutation, label, count in runs:
        for connections in config.connections:
            row = measure_write(
                url,
                database_url,
                auth,
                config,
                workload="W4",
                templates=[money[mutation]],
                count=count,
                connections=connections,
                seconds=config.duration,
                entries_per_request=True,
            )
            results.append({"mutation": mutation, "clients": label, **row})
            say(
                f"  W4 {mutation} {label} c={connections}: {row['rps']:,.1f} req/s, "
                f"p50 {row['p50_ms']} ms, entries {row['entries_written']:,} for "
                f"{row['requests_answered']:,} requests, balances off their ledger: "
                f"{row['balances_off_ledger']}"
            )
            if mutation == "creditAdd" and count > 1 and floor_too:
                # the same statements straight from asyncpg, on the same clients, right after
                since, pks = asyncio.run(last_entry_and_clients(database_url, count, funded=FUNDED))
                floor = asyncio.run(measure_write_floor(database_url, pks, connections, config))
                _, wrong = settled(database_url, since)
                results.append(
                    {
                        "mutation": mutation,
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


def _mix(
    url: str,
    database_url: str,
    token: str,
    config: Config,
    list_body: dict[str, Any],
    connections: int,
    seconds: int,
) -> dict[str, Any]:
    """One run of W5 on W4's clients."""
    return measure_write(
        url,
        database_url,
        f"Bearer {token}",
        config,
        workload="W5",
        templates=mixed_templates(list_body),
        count=config.w4_clients,
        connections=connections,
        seconds=seconds,
        entries_per_request=False,
    )


def measure_mix(
    url: str, database_url: str, token: str, config: Config, list_body: dict[str, Any]
) -> list[dict[str, Any]]:
    """W5: the back office's mix (bench/workloads.py `mixed_templates`) on W4's clients, at
    each number of connections."""
    results = []
    for connections in config.connections:
        row = _mix(url, database_url, token, config, list_body, connections, config.duration)
        results.append(row)
        say(
            f"  W5 mix c={connections}: {row['rps']:,.1f} req/s, p50 {row['p50_ms']} ms, "
            f"p99 {row['p99_ms']} ms, balances off their ledger: {row['balances_off_ledger']}"
        )
    return results


def soak(
    url: str,
    database_url: str,
    token: str,
    config: Config,
    list_body: dict[str, Any],
    workers: list[int],
) -> dict[str, Any]:
    """W5 at the most connections for `config.soak` seconds with the workers' memory sampled:
    its growth from the end of the first tenth (caches and pools filled) to the end."""
    settle = max(5.0, config.soak / 10)
    with MemoryWatch(workers, every=1.0) as series:
        row = _mix(
            url, database_url, token, config, list_body, max(config.connections), config.soak
        )
    settled_rss, final = series.at(settle), series.samples[-1][1]
    growth = max(final[pid] / settled_rss[pid] - 1 for pid in workers if settled_rss.get(pid))
    result = {
        "seconds": config.soak,
        "settled_after_seconds": settle,
        "rss_settled_mib": {pid: round(kib / 1024, 1) for pid, kib in settled_rss.items()},
        "rss_final_mib": {pid: round(kib / 1024, 1) for pid, kib in final.items()},
        "growth_percent": round(growth * 100, 1),
        "run": row,
    }
    say(
        f"  soak {config.soak} s: {row['rps']:,.1f} req/s, p99 {row['p99_ms']} ms; worker RSS "
        f"{result['rss_settled_mib']} -> {result['rss_final_mib']} MiB "
        f"({result['growth_percent']:+.1f}%)"
    )
    return result


async def measure_write_floor(
    database_url: str, client_ids: list[int], connections: int, config: Config
) -> dict[str, Any]:
    """bench.floor.write_floor on W4's clients (by the admin the bench token belongs to)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            staff_id = await connection.scalar(
                select(StaffUser.id).where(StaffUser.email == "admin@clientdesk.test")
            )
    finally:
        await engine.dispose()
    return await write_floor(
        database_url,
        client_ids=client_ids,
        staff_id=int(staff_id),
        connections=connections,
        seconds=config.duration,
    )
