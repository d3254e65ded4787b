"""A bulk status change of every client of a database (100,000 by default) as an operator
runs it: `clientsBulkPreview` and `clientsBulkRun` through the application (in process), the
job then worked by `clientdesk worker` processes, timed from the run until the job is
FINISHED. Twice: every client to INACTIVE, then every client back to ACTIVE (all of them
changed by the second).

    .venv/bin/python -m bench.bulk --database-url postgresql+asyncpg://…/clientdesk_bulk \\
        --clients 100000 [--workers 1]

The database is created and seeded when it has fewer clients (bench/harness.py), and
vacuumed before each run (the bench machine runs PostgreSQL with autovacuum off). The worker
runs CLIENTDESK_BULK_JOB_PARALLEL (default 2) chunks of the job at once.
"""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.harness import bench_token, prepare_database, say, vacuum
from clientdesk.settings import Settings
from db.models import BulkJob
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from gql.node import pk_of

CLIENTDESK = str(Path(sys.executable).parent / "clientdesk")
PREVIEW = """
mutation($action: ClientBulkAction!) {
  clientsBulkPreview(selection: {filter: {}}, action: $action) {
    preview { total willChange unchanged refused fingerprint runsAsJob }
    userErrors { code message }
  }
}
"""
RUN = """
mutation($action: ClientBulkAction!, $fingerprint: String!) {
  clientsBulkRun(selection: {filter: {}}, action: $action, fingerprint: $fingerprint) {
    job { id status total }
    userErrors { code message }
  }
}
"""


async def post(http: httpx.AsyncClient, token: str, query: str, variables: Any) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def one_change(url: str, token: str, status: str) -> dict[str, Any]:
    """Preview and run `setStatus: status` on every client; the job's id and the times."""
    app = create_app(Settings(database_url=url, rate_limit_points_per_minute=0))
    transport = httpx.ASGITransport(app=app)
    action = {"setStatus": status}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as http,
    ):
        started = time.perf_counter()
        shown = (await post(http, token, PREVIEW, {"action": action}))["clientsBulkPreview"]
        previewed = time.perf_counter()
        assert shown["userErrors"] == [], shown
        preview = shown["preview"]
        run = (
            await post(http, token, RUN, {"action": action, "fingerprint": preview["fingerprint"]})
        )["clientsBulkRun"]
        ran = time.perf_counter()
        assert run["userErrors"] == [], run
    return {
        "preview": preview,
        "job": pk_of(run["job"]["id"], "BulkJob"),
        "preview_s": previewed - started,
        "run_s": ran - previewed,
        "queued_at": ran,
    }


async def wait_finished(url: str, job_id: int) -> BulkJob:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        while True:
            async with sessions() as session:
                job = await session.scalar(select(BulkJob).where(BulkJob.id == job_id))
            assert job is not None
            if job.finished_at is not None:
                return job
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1, help="`clientdesk worker` processes")
    args = parser.parse_args()
    url = args.database_url
    prepare_database(url, args.clients)
    token = bench_token(url)
    environment = os.environ | {"CLIENTDESK_DATABASE_URL": url, "CLIENTDESK_LOG_LEVEL": "WARNING"}
    workers = [
        subprocess.Popen(
            [
                CLIENTDESK,
                "worker",
                "--concurrency",
                os.environ.get("CLIENTDESK_BULK_JOB_PARALLEL", "2"),
            ],
            env=environment,
        )
        for _ in range(args.workers)
    ]
    lines = [
        f"| bulk setStatus, {args.clients:,} clients, {args.workers} worker(s) | selected | "
        "changed | unchanged | preview s | run s (job started) | job s (run → FINISHED) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        for status in ("INACTIVE", "ACTIVE"):
            # as autovacuum keeps a live database (off on the bench machine): the last run's
            # dead rows gone, the statistics fresh
            asyncio.run(vacuum(url))
            measured = asyncio.run(one_change(url, token, status))
            job = asyncio.run(wait_finished(url, measured["job"]))
            took = time.perf_counter() - measured["queued_at"]
            say(f"to {status}: {job.changed:,} changed in {took:.1f} s")
            lines.append(
                f"| to {status} | {job.total:,} | {job.changed:,} | {job.unchanged:,} | "
                f"{measured['preview_s']:.1f} | {measured['run_s']:.1f} | {took:.1f} |"
            )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
