"""The floor: what one SQL statement per request costs, with nothing else in the way.

A bare ASGI app (no framework, no GraphQL, no authentication) that answers each workload's
POST with the JSON that one asyncpg statement builds inside PostgreSQL. No Python server that
does more per request can be faster; the benchmark reports Clientdesk's throughput as a
fraction of this.

    DATABASE_URL=postgresql://postgres@127.0.0.1/clientdesk_bench \\
        uvicorn --factory bench.floor:create_app --workers 2 --port 8300

POST /<workload> with `{"variables": {...}}`; the variables are those of the GraphQL
workload (`first`, `after` as a (created_at, id) pair, `search`).
"""

import asyncio
import hashlib
import itertools
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# One row of the list, as the GraphQL workloads select it.
NODE = """json_build_object(
    'id', id, 'login', login, 'name', name, 'email', email, 'status', status,
    'createdAt', created_at, 'balance', json_build_object('amount', balance, 'currency', currency),
    'manager', CASE WHEN manager_name IS NULL THEN NULL
               ELSE json_build_object('name', manager_name) END)"""
COLUMNS = """c.id, c.login, c.name, c.email, c.status, c.created_at, c.balance, c.currency,
    m.name AS manager_name"""
# As Clientdesk searches: one LIKE on the stored, lower-cased search text (migration 0007),
# the pattern written into the SQL so that PostgreSQL plans for it (see gql/clients/filters.py).
SEARCH = "c.search_text LIKE lower({pattern})"


def page_statement(where: str, *, count: str | None = None) -> str:
    """One statement for a page of `$1` rows newest first (plus one, for hasNextPage)."""
    total = f"'totalCount', ({count})," if count else ""
    return f"""
WITH page AS (
  SELECT {COLUMNS} FROM clients c LEFT JOIN staff_users m ON m.id = c.manager_id
  WHERE {where} ORDER BY c.created_at DESC, c.id DESC LIMIT $1 + 1
), shown AS (SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT $1)
SELECT json_build_object('data', json_build_object('clients', json_build_object(
  {total}
  'pageInfo', json_build_object(
    'hasNextPage', (SELECT count(*) FROM page) > $1,
    'endCursor', (SELECT json_build_array(created_at, id) FROM shown
                  ORDER BY created_at ASC, id ASC LIMIT 1)),
  'nodes', coalesce((SELECT json_agg({NODE} ORDER BY created_at DESC, id DESC) FROM shown),
                    '[]'::json))))::text
"""


ACTIVE = "c.status = 'ACTIVE'"
STATEMENTS: dict[str, str] = {
    "w1": page_statement(ACTIVE, count="SELECT count(*) FROM clients WHERE status = 'ACTIVE'"),
    "w1nc": page_statement(ACTIVE),
    "w2": page_statement(f"{ACTIVE} AND (c.created_at, c.id) < ($2, $3)"),
    "w3": page_statement(SEARCH),
    "w3r": page_statement(SEARCH),
}


def sql_literal(value: str) -> str:
    """A string constant for PostgreSQL (standard_conforming_strings is on by default)."""
    return "'" + value.replace("'", "''") + "'"


def arguments(workload: str, variables: dict[str, Any]) -> tuple[str, list[Any]]:
    """The workload's statement and its parameters, from the workload's variables."""
    first = int(variables.get("first", 50))
    statement = STATEMENTS[workload]
    if workload == "w2":
        created_at, id_ = variables["after"]
        return statement, [first, datetime.fromisoformat(created_at), int(id_)]
    if workload in ("w3", "w3r"):
        text = str(variables["search"])
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return statement.replace("{pattern}", sql_literal(f"%{escaped}%")), [first]
    return statement, [first]


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    pool: asyncpg.Pool | None = None

    async def respond(send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal pool
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    pool = await asyncpg.create_pool(url, min_size=10, max_size=10)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if pool is not None:
                        await pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        workload = scope["path"].strip("/")
        if workload not in STATEMENTS or pool is None:
            await respond(send, 404, b'{"error": "unknown workload"}')
            return
        variables = orjson.loads(body or b"{}").get("variables") or {}
        statement, parameters = arguments(workload, variables)
        text = await pool.fetchval(statement, *parameters)
        await respond(send, 200, text.encode())

    return app


# --- the write floor ------------------------------------------------------------------------
# What `creditAdd` sends PostgreSQL (services/ledger.py, with an idempotency key, by an admin):
# in one transaction, the client's row locked and read (services/locks.py LOCK_ROW), then one
# statement claiming the key with its response and writing the entry, the balance and the
# audit entry (services/ledger.py _write_all, keyed) — the very SQL, compiled by SQLAlchemy as
# the server compiles it. Prepared, over asyncpg, with nothing else around it: no HTTP, no
# GraphQL, no ORM. No server that runs these statements per request can be faster.


def _compiled(statement: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The statement's SQL for asyncpg, its parameters' names in order, and their defaults."""
    from sqlalchemy.dialects.postgresql import asyncpg as dialect

    compiled = statement.compile(dialect=dialect.dialect())
    return str(compiled), tuple(compiled.positiontup or ()), compiled.construct_params(_check=False)


async def write_floor(
    url: str, *, client_ids: list[int], staff_id: int, connections: int, seconds: float
) -> dict[str, float]:
    """Run creditAdd's statements (above) on `connections` connections for `seconds`, each
    transaction on the next client of `client_ids`: transactions/s, p50 and p99 in ms."""
    from services.ledger import _write_all
    from services.locks import LOCK_ROW

    lock_sql, lock_names, _ = _compiled(LOCK_ROW.statement)
    write_sql, write_names, defaults = _compiled(_write_all(keyed=True, lines=0))
    assert lock_names == ("client_id",)
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(plain, min_size=connections, max_size=connections)
    assert pool is not None
    turn = itertools.count()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(lane: int) -> None:
        async with pool.acquire() as connection:
            lock = await connection.prepare(lock_sql)
            write = await connection.prepare(write_sql)
            while time.monotonic() < deadline:
                n = next(turn)
                client_id = client_ids[n % len(client_ids)]
                key = f"floor-{time.time_ns()}-{lane}-{n}"
                started = time.perf_counter()
                now = datetime.now(UTC)
                amount = Decimal("1.00")
                async with connection.transaction():
                    client = await lock.fetchrow(client_id)
                    balance = client["balance"] + amount
                    values = {
                        **defaults,
                        "client_id": client_id,
                        "client_balance": balance,
                        "client_valid_till": client["valid_till"],
                        "client_updated_at": now,
                        "key_staff_id": staff_id,
                        "key_key": key,
                        "key_operation": "credit.add",
                        "key_request_hash": hashlib.sha256(key.encode()).hexdigest(),
                        "key_created_at": now,
                        "key_expires_at": now + timedelta(hours=24),
                        "entry_client_id": client_id,
                        "entry_kind": "PAYMENT",
                        "entry_amount": amount,
                        "entry_currency": client["currency"],
                        "entry_balance_after": balance,
                        "entry_payment_method": "BANK_TRANSFER",
                        "entry_payment_reference": None,
                        "entry_comment": "bench",
                        "entry_reverses_id": None,
                        "entry_valid_till_set": None,
                        "entry_valid_till_before": None,
                        "entry_created_by_id": staff_id,
                        "entry_created_at": now,
                        "audit_occurred_at": now,
                        "audit_actor_id": staff_id,
                        "audit_actor_email": "admin@clientdesk.test",
                        "audit_action": "credit.add",
                        "audit_target_type": "Client",
                        "audit_target_id": client_id,
                        "audit_target_label": client["login"],
                        "audit_before": json.dumps({"balance": str(client["balance"])}),
                        "audit_after": json.dumps(
                            {"balance": str(balance), "kind": "PAYMENT", "amount": str(amount)}
                        ),
                        "audit_reason": "bench",
                        "audit_request_id": None,
                    }
                    entry_id = await write.fetchval(*(values[name] for name in write_names))
                    assert entry_id is not None
                latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    try:
        await asyncio.gather(*(worker(lane) for lane in range(connections)))
    finally:
        await pool.close()
    elapsed = time.monotonic() - started
    latencies.sort()

    def percentile(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2)

    return {
        "transactions": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }
