"""The side-by-side report (bench/run.py): PostGraphile in N processes beside the single one,
with the ratios against both; the card's answers compared as rows (bench/workloads.py)."""

import base64
from dataclasses import asdict
from typing import Any

from bench.run import Config, Report, Run, markdown
from bench.scaling import scaling_table
from bench.workloads import (
    CLIENTDESK,
    POSTGRAPHILE,
    POSTGRAPHILE_N,
    card_rows,
    card_total,
    card_workload,
    read_workloads,
)


def run(workload: str, system: str, connections: int, rps: float) -> Run:
    return Run(workload, system, connections, 1, int(rps), 1.0, rps, 1.0, 2.0, 0)


def empty_report(**parts: Any) -> Report:
    """A report of a 2-core machine and a small database, with `parts` filled in."""
    return Report(
        started="now",
        machine={"cpus": 2, "cpu": "?", "memory_gib": 1, "postgresql": "15", "python": "3.11"}
        | {"node": "24", "wrk": "wrk"},
        config={},
        database={"clients": 10, "managers": 1, "entries": 1},
        **parts,
    )


def test_the_n_process_peer_has_its_table_ratios_and_targets() -> None:
    config = Config.quick()
    workloads = read_workloads(
        deep={CLIENTDESK: "a", POSTGRAPHILE: "b", "floor": []}, depth=10, common="x", rare="y"
    )
    names = [w.name for w in workloads]
    report = empty_report()
    for connections in (1, 32):
        report.runs += [
            run("W1nc", CLIENTDESK, connections, 1500.0),
            run("W1nc", POSTGRAPHILE, connections, 1000.0),
            run("W1nc", POSTGRAPHILE_N, connections, 1200.0),
        ]
    text = markdown(report, [w for w in workloads if w.name == "W1nc"], config)

    assert "W1nc" in names
    assert all(w.requests[POSTGRAPHILE_N] == w.requests[POSTGRAPHILE] for w in workloads)
    assert "| W1nc | 32 | 1,200.0 | 1.0 | 2.0 | 1.25 | 1.50 | 1.20 |" in text
    assert "Targets at 32 connections (Clientdesk / PostGraphile, 2 processes):" in text
    assert "- W1nc: 1.25 (≥ 1.5: NOT MET)" in text
    assert "- W1nc: 1.50 (≥ 1: met)" in text


def test_the_card_is_compared_as_the_same_rows_from_both_schemas() -> None:
    def gid(kind: str, pk: int) -> str:
        return base64.b64encode(f"{kind}:{pk}".encode()).decode()

    ours = {
        "data": {
            "client": {
                "login": "acme",
                "manager": {"name": "Ann"},
                "parent": None,
                "creditEntries": {
                    "totalCount": 7,
                    "nodes": [
                        {"id": gid("CreditEntry", 9), "balanceAfter": {"amount": "5.00"}}
                        | {"createdBy": {"name": "Ann"}},
                        {"id": gid("CreditEntry", 4), "balanceAfter": {"amount": "2.50"}}
                        | {"createdBy": None},
                    ],
                },
                "subAccounts": {"nodes": [{"login": "acme.b"}, {"login": "acme.a"}]},
            }
        }
    }
    theirs = {
        "data": {
            "clientByRowId": {
                "login": "acme",
                "staffUserByManagerId": {"name": "Ann"},
                "clientByParentId": None,
                "creditEntries": {
                    "totalCount": "7",
                    "nodes": [
                        {"rowId": "9", "balanceAfter": "5.0000"}
                        | {"staffUserByCreatedById": {"name": "Ann"}},
                        {"rowId": "4", "balanceAfter": "2.50", "staffUserByCreatedById": None},
                    ],
                },
                "clientsByParentId": {"nodes": [{"login": "acme.b"}, {"login": "acme.a"}]},
            }
        }
    }
    workload = card_workload(3, gid("Client", 3))

    assert card_rows(CLIENTDESK, ours) == card_rows(POSTGRAPHILE, theirs)
    assert card_rows(POSTGRAPHILE_N, theirs)[3] == "entry 9 5 by Ann"
    assert card_total(CLIENTDESK, ours) == card_total(POSTGRAPHILE, theirs) == 7
    theirs["data"]["clientByRowId"]["clientsByParentId"]["nodes"].reverse()
    assert card_rows(CLIENTDESK, ours) != card_rows(POSTGRAPHILE, theirs)
    assert workload.requests[POSTGRAPHILE].body["variables"] == {"id": "3"}
    assert "floor" not in workload.requests


def test_the_scaling_table_says_which_workloads_stay_flat() -> None:
    rows = [
        {"clients": n, "title": "", **asdict(run(name, CLIENTDESK, 32, rps))}
        for n, name, rps in (
            (100_000, "W1nc", 1000.0),
            (5_000_000, "W1nc", 850.0),
            (100_000, "card", 1000.0),
            (5_000_000, "card", 700.0),
        )
    ]
    lines = scaling_table(rows)
    assert lines[0].startswith("| workload | conns | 100,000: req/s | p99 | 5,000,000: req/s |")
    assert "| W1nc | 32 | 1,000.0 | 2.0 | 850.0 | 2.0 | 0.85 | yes |" in lines
    assert "| card | 32 | 1,000.0 | 2.0 | 700.0 | 2.0 | 0.70 | NO |" in lines


def test_the_money_mutations_are_compared_with_credit_add_and_the_soak_with_five_percent() -> None:
    def write(mutation: str, rps: float) -> dict[str, Any]:
        return {
            "mutation": mutation,
            "clients": "1,000 clients",
            **asdict(run("W4", CLIENTDESK, 32, rps)),
            "entries_written": 10,
            "requests_answered": 10,
            "in_flight_at_the_end": 0,
            "balances_off_ledger": 0,
        }

    report = empty_report(
        w4=[
            write("creditAdd", 500.0),
            write("creditDeduct", 450.0),
            write("creditNoteCreate", 300.0),
        ],
        soak={
            "seconds": 600,
            "settled_after_seconds": 60.0,
            "rss_settled_mib": {1: 120.0, 2: 121.0},
            "rss_final_mib": {1: 126.5, 2: 122.0},
            "growth_percent": 5.4,
            "run": asdict(run("W5", CLIENTDESK, 32, 300.0)) | {"balances_off_ledger": 0},
        },
    )
    text = markdown(report, [], Config.quick())
    assert "- creditDeduct at 32: 0.90 x creditAdd (≥ 0.8: met)" in text
    assert "- creditNoteCreate at 32: 0.60 x creditAdd (≥ 0.8: NOT MET)" in text
    assert "| creditDeduct | 1,000 clients | 32 | 450.0 |" in text
    assert "120.0 -> 126.5, 121.0 -> 122.0; growth +5.4% (< 5%: NOT MET)" in text
