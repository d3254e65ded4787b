"""What an outsider may send the HTTP surface, answered without stalling, crashing or
filling memory: bodies stop being read at the limit, JSON that is not a request is a 400 with
a code, odd cabinet tokens are a 401, malformed requests get a code and nothing of Python,
every answer carries its security headers, only safe request ids are kept, and /metrics is
guarded in production."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from clientdesk.settings import Settings
from db.enums import ClientStatus
from gql.app import create_app
from gql.guards import MAX_JSON_DEPTH
from gql.node import to_global_id
from services.cabinet import AUDIENCE
from tests.api import GraphQLClient
from tests.conftest import FakeClock
from tests.factories import Factory

LIMIT = Settings().max_body_bytes
CHUNK = b" " * 16_384
TYPENAME = "{ __typename }"
ECHO_JSON = "query($v: JSON) { __typename }"
SET_STATUS = """
mutation($ids: [ID!]!, $status: ClientStatus!) {
  clientsSetStatus(ids: $ids, status: $status) { userErrors { code } }
}
"""
AUDIT = "{ auditLog(first: 5) { nodes { action requestId } } }"
# What an error answer must never show.
INTERNALS = ("Traceback", 'File "', ".py", "Exception", "has no attribute", "sqlalchemy")


def code_of(response: httpx.Response) -> str:
    """The error code of an answer, in GraphQL's shape (/graphql) or the cabinet's."""
    body = response.json()
    if "errors" in body:
        return str(body["errors"][0]["extensions"]["code"])
    return str(body["error"]["code"])


def assert_no_internals(response: httpx.Response) -> None:
    for leak in INTERNALS:
        assert leak not in response.text, (leak, response.text)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def request_with(value: str, *, under: str = "variables") -> bytes:
    """A request whose `variables` (or `extensions`) hold `value` as "v"."""
    return f'{{"query": "{ECHO_JSON}", "{under}": {{"v": {value}}}}}'.encode()


# --- Bodies stop being read at the limit ---------------------------------------------------


class CountingBody:
    """A body of `chunks` 16 KiB chunks (100 MiB by default), made only as the server reads
    it: `pulled` counts the chunks the server took."""

    def __init__(self, chunks: int = 6_400) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield CHUNK


@pytest.mark.parametrize("path", ["/graphql", "/cabinet/set-password"])
@pytest.mark.parametrize(
    ("declared", "read_at_most"),
    [
        (None, LIMIT // len(CHUNK) + 1),  # chunked: read up to the chunk past the limit
        ("10", LIMIT // len(CHUNK) + 1),  # a Content-Length that lies
        (str(LIMIT + 1), 0),  # a Content-Length over the limit: nothing is read
    ],
    ids=["chunked", "lying-length", "declared-too-large"],
)
async def test_a_body_is_not_read_past_the_limit(
    http: httpx.AsyncClient, path: str, declared: str | None, read_at_most: int
) -> None:
    # given a 100 MiB body that streams in as the server reads it
    body = CountingBody()
    headers = {"Content-Type": "application/json"}
    if declared is not None:
        headers["Content-Length"] = declared
    # when it is sent without a token
    response = await http.post(path, content=body, headers=headers)
    # then the server stopped reading at the limit and said why
    assert response.status_code == 413
    assert code_of(response) == "PAYLOAD_TOO_LARGE"
    assert response.headers["connection"] == "close"  # the rest is not read off the socket
    assert body.pulled == read_at_most


async def test_a_body_at_the_limit_is_read(http: httpx.AsyncClient) -> None:
    query = orjson.dumps({"query": TYPENAME})
    padded = query + b" " * (LIMIT - len(query))
    response = await http.post(
        "/graphql", content=padded, headers={"Content-Type": "application/json"}
    )
    assert response.json()["data"] == {"__typename": "Query"}


# --- JSON that is not a request ------------------------------------------------------------

DEEPER = f"deeper than {MAX_JSON_DEPTH} levels"
# Each body, and what the error message says of it.
NOT_REQUESTS: dict[str, tuple[bytes, str]] = {
    "number": (b"5", "must be a JSON object"),
    "null": (b"null", "must be a JSON object"),
    "true": (b"true", "must be a JSON object"),
    "string": (b'"x"', "must be a JSON object"),
    "empty list": (b"[]", "batches are not accepted"),
    "batch": (b'[{"query": "{ __typename }"}]', "batches are not accepted"),
    "empty body": (b"", "not valid JSON"),
    "not JSON": (b"{query", "not valid JSON"),
    "invalid UTF-8": (b'{"query": "{ __typename }", "x": "\xff\xfe"}', "not valid UTF-8"),
    "query a number": (b'{"query": 5}', "`query` must be a string"),
    "operationName a number": (
        b'{"query": "{ __typename }", "operationName": 5}',
        "`operationName` must be a string",
    ),
    "variables a number": (
        b'{"query": "{ __typename }", "variables": 5}',
        "`variables` must be an object",
    ),
    "variables a list": (
        b'{"query": "{ __typename }", "variables": []}',
        "`variables` must be an object",
    ),
    "variables false": (
        b'{"query": "{ __typename }", "variables": false}',
        "`variables` must be an object",
    ),
    "extensions a string": (
        b'{"query": "{ __typename }", "extensions": "x"}',
        "`extensions` must be an object",
    ),
    "variables 20,000 deep": (request_with(nested(20_000)), DEEPER),
    "variables 500 deep": (request_with(nested(500)), DEEPER),
    "one level too deep": (request_with(nested(MAX_JSON_DEPTH - 1), under="extensions"), DEEPER),
}


@pytest.mark.parametrize(("body", "says"), NOT_REQUESTS.values(), ids=NOT_REQUESTS.keys())
@pytest.mark.parametrize("with_token", [False, True], ids=["anonymous", "token"])
async def test_json_that_is_not_a_request_is_a_400(
    api: GraphQLClient, factory: Factory, body: bytes, says: str, with_token: bool
) -> None:
    headers = {"Content-Type": "application/json"}
    if with_token:  # a token's requests may take the compiled path first
        headers["Authorization"] = f"Bearer {await factory.admin_token()}"
    response = await api.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert code_of(response) == "BAD_REQUEST"
    assert says in response.json()["errors"][0]["message"]
    assert "data" not in response.json()
    assert_no_internals(response)


async def test_json_nested_to_the_limit_is_a_request(api: GraphQLClient) -> None:
    # the body is level 1, its extensions 2, and `v` holds the remaining levels
    deepest = request_with(nested(MAX_JSON_DEPTH - 2), under="extensions")
    response = await api.http.post(
        "/graphql",
        content=deepest.replace(ECHO_JSON.encode(), TYPENAME.encode()),
        headers={"Content-Type": "application/json"},
    )
    assert response.json()["data"] == {"__typename": "Query"}


# --- Malformed requests to every route -----------------------------------------------------

JSON = {"Content-Type": "application/json"}
MALFORMED: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("PUT", "/graphql", {"json": {"query": TYPENAME}}, 405, "METHOD_NOT_ALLOWED"),
    ("DELETE", "/graphql", {}, 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/graphql", {"content": b'{"query": "{ __typename }"}'}, 400, "BAD_REQUEST"),
    (
        "POST",
        "/graphql",
        {"content": b'{"query": "{ __typename }"}', "headers": {"Content-Type": "text/plain"}},
        400,
        "BAD_REQUEST",
    ),
    ("POST", "/graphql", {"data": {"query": TYPENAME}}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"json": {}}, 400, "BAD_REQUEST"),
    (
        "POST",
        "/graphql",
        {"json": {"query": TYPENAME, "operationName": "Nope"}},
        400,
        "BAD_REQUEST",
    ),
    (
        "GET",
        "/graphql",
        {"params": {"query": "mutation { __typename }"}},
        405,
        "METHOD_NOT_ALLOWED",
    ),
    (
        "GET",
        "/graphql",
        {"params": {"query": TYPENAME, "variables": "not json"}},
        400,
        "BAD_REQUEST",
    ),
    ("GET", "/graphql", {"params": {"query": TYPENAME, "variables": "5"}}, 400, "BAD_REQUEST"),
    ("GET", "/graphql", {"params": {"query": TYPENAME, "extensions": "[1]"}}, 400, "BAD_REQUEST"),
    (
        "GET",
        "/graphql",
        {"params": {"query": ECHO_JSON, "variables": '{"v": ' + nested(10_000) + "}"}},
        400,
        "BAD_REQUEST",
    ),
    ("GET", "/graphql?query=%7B__typename%7D&variables=%FF%FE", {}, 400, "BAD_REQUEST"),
    ("GET", "/graphql", {"headers": {"Accept": "application/json"}}, 400, "BAD_REQUEST"),
    ("GET", "/nowhere", {}, 404, "NOT_FOUND"),
    ("POST", "/healthz", {}, 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/cabinet/set-password", {}, 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/cabinet/session", {}, 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/cabinet/session", {}, 401, "UNAUTHENTICATED"),
    ("POST", "/cabinet/set-password", {"content": b"5", "headers": JSON}, 400, "BAD_REQUEST"),
    ("POST", "/cabinet/set-password", {"content": b"\xff", "headers": JSON}, 400, "BAD_REQUEST"),
    (
        "POST",
        "/cabinet/set-password",
        {"content": nested(5_000).encode(), "headers": JSON},
        400,
        "BAD_REQUEST",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "arguments", "status", "code"),
    MALFORMED,
    ids=[f"{row[0]} {row[1]} {i}" for i, row in enumerate(MALFORMED)],
)
async def test_a_malformed_request_gets_a_code_and_nothing_of_python(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    arguments: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = await http.request(method, path, **arguments)
    assert response.status_code == status, response.text
    assert code_of(response) == code
    assert_no_internals(response)
    if status == 405:
        assert response.headers["allow"]


@pytest.mark.logs_errors  # the failure is logged, on purpose
async def test_an_unexpected_failure_outside_graphql_is_a_coded_500(
    app: Any, factory: Factory, connection: AsyncConnection, settings: Settings, clock: FakeClock
) -> None:
    # given a valid cabinet token, then a database that fails under the route
    client = await factory.client(login="acme")
    token = cabinet_token(settings, clock, sub=str(client.id))
    await connection.execute(text("ALTER TABLE clients RENAME TO clients_gone"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        # when the cabinet is opened
        response = await http.get("/cabinet/session", headers={"Authorization": f"Bearer {token}"})
    # then the answer has a code and the request id, and nothing of the failure
    assert response.status_code == 500
    assert code_of(response) == "INTERNAL_SERVER_ERROR"
    assert response.headers["x-request-id"] in response.json()["error"]["message"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "clients" not in response.text
    assert_no_internals(response)


# --- Cabinet tokens with odd claims --------------------------------------------------------


def cabinet_token(settings: Settings, clock: FakeClock, **claims: Any) -> str:
    """A cabinet token signed with the server's key, with `claims` over sensible ones."""
    valid = {
        "sub": "1",
        "sid": "1",
        "act": {"sub": "1", "email": "root@clientdesk.test"},
        "aud": AUDIENCE,
        "iat": int(clock().timestamp()),
        "exp": int((clock() + timedelta(minutes=15)).timestamp()),
        "jti": "token-id",
    }
    return jwt.encode({**valid, **claims}, settings.signing_key, algorithm="HS256")


ODD_CLAIMS: dict[str, dict[str, Any]] = {
    "exp 10**30": {"exp": 10**30},
    "exp -10**30": {"exp": -(10**30)},
    "exp 1e300": {"exp": 1e300},
    "exp infinite": {"exp": float("inf")},
    "exp NaN": {"exp": float("nan")},
    "exp a float": {"exp": 4_102_444_800.5},
    "exp a string": {"exp": "4102444800"},
    "exp true": {"exp": True},
    "exp null": {"exp": None},
    "sub 2**70": {"sub": str(2**70)},
    "sub a number": {"sub": 1},
    "sub negative": {"sub": "-1"},
    "sub padded": {"sub": " 1"},
    "sub with underscores": {"sub": "1_0"},
    "sub in Arabic digits": {"sub": "\u0661"},
    "sub empty": {"sub": ""},
    "sid 2**70": {"sid": str(2**70)},
    "sid a number": {"sid": 1},
    "sid null": {"sid": None},
    "act a string": {"act": "x"},
    "act without sub": {"act": {}},
    "act sub 2**70": {"act": {"sub": str(2**70)}},
    "jti a number": {"jti": 5},
    "iat infinite": {"iat": float("inf")},
    "nbf infinite": {"nbf": float("inf")},
}


@pytest.mark.parametrize("claims", ODD_CLAIMS.values(), ids=ODD_CLAIMS.keys())
async def test_a_cabinet_token_with_odd_claims_is_a_401(
    http: httpx.AsyncClient, settings: Settings, clock: FakeClock, claims: dict[str, Any]
) -> None:
    token = cabinet_token(settings, clock, **claims)
    response = await http.get("/cabinet/session", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, code_of(response)) == (401, "INVALID_TOKEN")
    assert_no_internals(response)


async def test_a_cabinet_token_for_an_id_beyond_any_row_finds_nothing(
    http: httpx.AsyncClient, settings: Settings, clock: FakeClock
) -> None:
    largest = "9" * 18
    token = cabinet_token(settings, clock, sub=largest, sid=largest, act={"sub": largest})
    response = await http.get("/cabinet/session", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, code_of(response)) == (401, "SESSION_ENDED")
    assert response.json()["error"]["reason"] == "gone"


# --- Security headers ----------------------------------------------------------------------

ANSWERS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("GET", "/healthz", {}, False),
    ("GET", "/readyz", {}, False),
    ("GET", "/metrics", {}, False),
    ("GET", "/nowhere", {}, False),
    ("POST", "/graphql", {"json": {"query": TYPENAME}}, True),
    ("POST", "/graphql", {"json": {"query": "{ viewer { id } }"}}, True),
    ("POST", "/graphql", {"content": b"5", "headers": JSON}, True),
    ("POST", "/graphql", {"content": b" " * (LIMIT + 1), "headers": JSON}, True),
    ("GET", "/graphql", {"params": {"query": TYPENAME}}, True),
    ("GET", "/graphql", {"headers": {"Accept": "text/html"}}, True),
    ("PUT", "/graphql", {}, True),
    ("GET", "/cabinet/session", {"headers": {"Authorization": "Bearer x"}}, True),
    ("POST", "/cabinet/set-password", {"json": {"token": "x", "password": "y"}}, True),
]


@pytest.mark.parametrize(
    ("method", "path", "arguments", "private"),
    ANSWERS,
    ids=[f"{row[0]} {row[1]} {i}" for i, row in enumerate(ANSWERS)],
)
async def test_every_answer_carries_the_security_headers(
    http: httpx.AsyncClient, method: str, path: str, arguments: dict[str, Any], private: bool
) -> None:
    response = await http.request(method, path, **arguments)
    assert response.headers["x-content-type-options"] == "nosniff"
    if private:  # may carry a token or personal data
        assert response.headers["cache-control"] == "no-store"


# --- Request ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["trace-123", "a" * 64, "svc:req.1_2-3"])
async def test_a_safe_request_id_is_kept(http: httpx.AsyncClient, given: str) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given",
    ["a" * 65, "has space", "<script>", 'quote"', "semi;colon", "{json}", "caf\xe9", "a/b"],
)
async def test_an_unsafe_request_id_is_replaced(http: httpx.AsyncClient, given: str) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": given.encode("latin-1")})
    kept = response.headers["x-request-id"]
    assert kept != given
    assert len(kept) == 32
    assert int(kept, 16) >= 0


async def test_the_audit_log_keeps_our_id_not_an_unsafe_one(
    api: GraphQLClient, factory: Factory
) -> None:
    # given an audited change sent with an unsafe request id
    api.token = await factory.admin_token()
    client = await factory.client(login="bob", status=ClientStatus.ACTIVE)
    response = await api.http.post(
        "/graphql",
        json={
            "query": SET_STATUS,
            "variables": {"ids": [to_global_id("Client", client.id)], "status": "INACTIVE"},
        },
        headers={"Authorization": f"Bearer {api.token}", "X-Request-ID": "<img src=x>"},
    )
    assert response.json()["data"]["clientsSetStatus"]["userErrors"] == []
    # then the audit entry has the id the server gave the request
    entry = (await api(AUDIT))["auditLog"]["nodes"][0]
    assert entry["action"] == "client.status_change"
    assert entry["requestId"] == response.headers["x-request-id"] != "<img src=x>"


# --- /metrics in production ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("update", "token", "status"),
    [
        ({}, None, 200),  # development: open, as before
        ({"environment": "production"}, None, 404),  # production: off without a token
        ({"environment": "production", "metrics_token": SecretStr("s")}, None, 401),
        ({"environment": "production", "metrics_token": SecretStr("s")}, "s", 200),
        ({"environment": "production", "metrics": True}, None, 200),  # the operator opted in
        (
            {"environment": "production", "metrics": False, "metrics_token": SecretStr("s")},
            "s",
            404,
        ),
    ],
    ids=["development", "production", "prod-no-token", "prod-token", "prod-opt-in", "prod-off"],
)
async def test_metrics_need_a_token_in_production_unless_opened(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    update: dict[str, Any],
    token: str | None,
    status: int,
) -> None:
    app = create_app(settings.model_copy(update=update), engine=engine, sessionmaker=sessionmaker)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics.test") as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == status
