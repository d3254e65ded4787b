"""Test tools we did not write, against a real server process: graphql-http's server audit
(the GraphQL-over-HTTP spec) and schemathesis (generated queries for every root field)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.blackbox.conftest import ROOT, LiveServer

AUDIT = ROOT / "tools" / "graphql-http-audit"
ST = str(Path(sys.executable).parent / "st")


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


def test_schemathesis_finds_no_server_errors(live_server: LiveServer, tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tools.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [
            ST,
            "run",
            live_server.graphql,
            "--header",
            f"Authorization: Bearer {live_server.token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--generation-deterministic",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        cwd=tmp_path,
    )
    summary = [line for line in done.stdout.splitlines() if "generated" in line or "Tested" in line]
    print("schemathesis:", *summary)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Tested: 4" in done.stdout  # every root field (40-odd operations)
    assert live_server.failures() == []
