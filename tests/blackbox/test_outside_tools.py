"""Test tools we did not write, against a real server process: graphql-http's server audit
(the GraphQL-over-HTTP spec) and schemathesis (generated queries for every root field)."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gql.schema import schema
from tests.blackbox.conftest import ROOT, LiveServer
from tests.fuzzing import fuzz_report

AUDIT = ROOT / "tools" / "graphql-http-audit"
ST = str(Path(sys.executable).parent / "st")
FUZZ_CASES = 4_000  # generated cases per database: 8,000 in a CI run, every operation on both
ST_WORKERS = 2  # schemathesis' threads: one generates while the server answers another
ST_SHARDS = 2  # schemathesis runs side by side, each over its share of the operations


def need(tool: str, installed: Path | None = None) -> None:
    """CI must have the tool (CLIENTDESK_REQUIRE_TOOLS=1): there a missing one fails."""
    missing = shutil.which(tool) is None or (installed is not None and not installed.exists())
    if missing:
        if os.environ.get("CLIENTDESK_REQUIRE_TOOLS"):
            pytest.fail(f"{tool} is required here; run `make tools`")
        pytest.skip(f"{tool} is not installed (run `make tools`)")


def test_graphql_over_http_audit_has_no_failures(live_server: LiveServer) -> None:
    need("node", AUDIT / "node_modules" / "graphql-http")
    done = subprocess.run(
        ["node", str(AUDIT / "audit.mjs"), live_server.graphql, live_server.token],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    counts = f"{report['ok']} ok, {report['warn']} warnings, {report['error']} errors"
    print(f"graphql-http audit: {counts}")
    assert report["errors"] == []
    assert report["warnings"] == []  # the SHOULD rules too
    assert report["ok"] >= 50
    assert done.returncode == 0


def root_fields() -> list[str]:
    """Every operation schemathesis tests: the root fields, as it names them."""
    graphql_schema = schema._schema
    roots = [("Query", graphql_schema.query_type), ("Mutation", graphql_schema.mutation_type)]
    return [f"{name}.{field}" for name, root in roots if root for field in root.fields]


def test_schemathesis_finds_no_server_errors(
    live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    operations = root_fields()
    per_operation = math.ceil(FUZZ_CASES / len(operations))
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tools.schemathesis_hooks",
        "CLIENTDESK_FUZZ_DATA": str(live_server.fuzz_data),
        "PYTHONPATH": str(ROOT),
    }
    # Schemathesis generates in Python threads (one core at most): a run per shard of the
    # operations, side by side, keeps both cores busy.
    shards = [operations[n::ST_SHARDS] for n in range(ST_SHARDS)]
    started = time.perf_counter()  # reported, never asserted on
    runs = []
    for n, shard in enumerate(shards):
        reports = tmp_path / f"shard{n}"
        reports.mkdir()
        names = "|".join(re.escape(name) for name in shard)
        command = [
            ST,
            "run",
            live_server.graphql,
            "--header",
            f"Authorization: Bearer {live_server.token}",
            "--checks",
            "not_a_server_error",
            "--include-name-regex",
            f"^({names})$",
            "--max-examples",
            str(per_operation),
            "--generation-deterministic",  # the same cases on every run
            "--workers",
            str(ST_WORKERS),
            "--report",
            "json",
            "--report-dir",
            str(reports),
        ]
        runs.append(
            (
                reports,
                subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=environment,
                    cwd=reports,
                ),
            )
        )
    outputs = [process.communicate(timeout=1800)[0] for _, process in runs]
    seconds = time.perf_counter() - started
    reports = [json.loads(next(folder.glob("*.json")).read_text()) for folder, _ in runs]
    generated = sum(report["test_cases"]["generated"] for report in reports)
    tested = sum(report["operations"]["tested"] for report in reports)
    no_data = [name for report in reports for name in report["warnings"]["missing_test_data"]]
    fuzz_report(
        request.config,
        f"schemathesis ({request.node.callspec.id}): {generated} cases over {tested} "
        f"operations in {seconds:.0f} s ({generated / seconds:.0f}/s, {ST_SHARDS} runs of "
        f"{ST_WORKERS} workers); {len(no_data)} operations never answered data: "
        f"{', '.join(no_data) or '-'}",
    )
    for report, output, (_, process) in zip(reports, outputs, runs, strict=True):
        assert report["failures"] == [], output[-8000:]
        assert report["errors"] == [], output[-8000:]
        counts = report["operations"]
        assert counts["tested"] == counts["selected"], counts
        assert counts["errored"] == counts["skipped"] == 0, counts
        assert process.returncode == 0, output[-8000:]
    assert tested == len(operations)
    assert generated >= FUZZ_CASES
    assert live_server.failures() == []
