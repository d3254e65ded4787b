"""The HTTP surface: health probes, GraphiQL, request ids, and masked internal errors."""

import asyncio

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from clientdesk.settings import Settings
from db.session import create_engine
from gql.app import create_app
from tests.api import GraphQLClient
from tests.factories import Factory


async def test_healthz_answers_without_the_database(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    # given an app whose database refuses connections (nothing listens on port 1)
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        # when a probe asks
        response = await http.get("/readyz")
    await engine.dispose()
    # then it says so, without details
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


async def test_graphiql_is_served_on_get(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_graphiql_is_off_in_production(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"environment": "production"}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/graphql", headers={"Accept": "text/html"})
    await app.state.engine.dispose()
    assert response.status_code == 404


async def test_request_id_is_returned_and_callers_id_kept(http: httpx.AsyncClient) -> None:
    generated = await http.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    kept = await http.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert kept.headers["x-request-id"] == "trace-123"


@pytest.mark.logs_errors  # the resolver's exception is logged, on purpose
async def test_internal_error_is_masked_with_the_request_id(
    api: GraphQLClient, factory: Factory, connection: AsyncConnection
) -> None:
    # given a token, then a database that fails under the resolver (its table is gone)
    api.token = await factory.admin_token()
    await connection.execute(text("ALTER TABLE clients RENAME TO clients_gone"))
    # when a client is read
    response = await api.post('{ client(login: "nobody") { id } }')
    # then the caller gets a generic error that quotes the request id, and no internals
    body = response.json()
    error = body["errors"][0]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert request_id in error["message"]
    for leak in ("clients", "SELECT", "sqlalchemy", "Traceback", ".py", "Error:"):
        assert leak not in response.text


async def test_a_failed_field_leaves_no_database_work_behind(
    api: GraphQLClient, factory: Factory, engine: AsyncEngine
) -> None:
    # given a query whose nested field fails while its siblings still have loads in flight
    api.token = await factory.admin_token()
    await factory.client(login="parent")
    query = """{ client(login: "parent") {
        subAccounts(first: 500) { totalCount }
        creditEntries { totalCount nodes { id } }
        connections { type }
    } }"""
    savepoints: list[str] = []
    listeners = {
        "savepoint": lambda conn, name: savepoints.append(f"open {name}"),
        "release_savepoint": lambda conn, name, context: savepoints.append(f"close {name}"),
        "rollback_savepoint": lambda conn, name, context: savepoints.append(f"close {name}"),
    }
    for name, listener in listeners.items():
        event.listen(engine.sync_engine, name, listener)
    try:
        # when the response has been sent
        errors = await api.errors(query)
        for _ in range(20):  # let any straggling resolver run
            await asyncio.sleep(0)
    finally:
        for name, listener in listeners.items():
            event.remove(engine.sync_engine, name, listener)
    assert errors[0]["path"] == ["client", "subAccounts"]
    # then every savepoint the request's session opened was closed: nothing reopened it
    opened = [s for s in savepoints if s.startswith("open")]
    assert len(opened) == len(savepoints) - len(opened)
