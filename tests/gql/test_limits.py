"""Abuse limits, refused before anything runs, each with its own code."""

import base64
from typing import Any

import httpx
import pytest

from clientdesk.settings import Settings
from tests.api import GraphQLClient, error_codes
from tests.factories import Factory


@pytest.fixture
async def token(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


def nested(depth: int) -> str:
    """clients { nodes { subAccounts { nodes { … login } } } } with `depth` fields in all."""
    inner = "login"
    fields = 1
    while fields + 4 <= depth:
        inner = f"subAccounts(first: 1) {{ nodes {{ {inner} }} }}"
        fields += 2
    query = f"clients(first: 1) {{ nodes {{ {inner} }} }}"
    return "{ " + query + " }"


@pytest.mark.usefixtures("token")
async def test_depth_allows_clients_sub_accounts_credit_entries(api: GraphQLClient) -> None:
    deep_enough = """{ clients(first: 2) { edges { node { subAccounts(first: 2) { edges { node {
        creditEntries(first: 2) { edges { node { amount { amount } createdBy { name } } } }
    } } } } } } }"""
    await api(deep_enough)  # 12 fields deep: allowed
    too_deep = """{ clients(first: 2) { edges { node { subAccounts(first: 2) { edges { node {
        creditEntries(first: 2) { edges { node { lines { package { prices { amount } } } } } }
    } } } } } } }"""
    errors = await api.errors(too_deep)
    assert error_codes(errors) == ["QUERY_TOO_DEEP"]
    assert errors[0]["message"] == "The query is 13 fields deep; at most 12."


@pytest.mark.usefixtures("token")
async def test_depth_counts_through_fragments_but_not_introspection(api: GraphQLClient) -> None:
    query = """
    query { clients(first: 1) { ...A } }
    fragment A on ClientConnection { edges { node { subAccounts(first: 1) { ...B } } } }
    fragment B on ClientConnection { edges { node { creditEntries(first: 1) {
        edges { node { lines { package { prices { amount } } } } } } } } }
    """
    assert error_codes(await api.errors(query)) == ["QUERY_TOO_DEEP"]
    from graphql import get_introspection_query

    data = await api(get_introspection_query(descriptions=True))
    assert data["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.usefixtures("token")
async def test_aliases_are_counted_through_fragments(api: GraphQLClient) -> None:
    fifteen = "{ " + " ".join(f"a{n}: viewer {{ name }}" for n in range(15)) + " }"
    await api(fifteen)
    # 4 aliases in a fragment spread 4 times, plus 1: 17
    query = """
    query { x: viewer { ...F } y: viewer { ...F } z: viewer { ...F } w: viewer { ...F } }
    fragment F on Viewer { a: name b: email c: role d: id }
    """
    errors = await api.errors(query)
    assert error_codes(errors) == ["TOO_MANY_ALIASES"]
    assert errors[0]["message"] == "20 aliases; at most 15."


@pytest.mark.usefixtures("token")
async def test_tokens_and_directives(api: GraphQLClient) -> None:
    long = "{ viewer { " + " ".join(["name"] * 1000) + " } }"
    errors = await api.errors(long)
    assert error_codes(errors) == ["TOO_MANY_TOKENS"]
    assert "more than 1000 tokens" in errors[0]["message"]
    directives = "{ viewer { " + " name @include(if: true)" * 51 + " } }"
    assert error_codes(await api.errors(directives)) == ["TOO_MANY_DIRECTIVES"]


@pytest.mark.usefixtures("token")
async def test_cost_is_the_nodes_pages_can_return(api: GraphQLClient) -> None:
    # 100 clients x 100 sub-accounts x 10 entries: 100 + 10,000 + 100,000 nodes
    query = """query($n: Int) { clients(first: 100) { nodes { subAccounts(first: $n) {
        nodes { creditEntries { nodes { id } } } } } } }"""
    errors = await api.errors(query, {"n": 100})
    assert error_codes(errors) == ["QUERY_TOO_COSTLY"]
    assert "110,100 nodes; at most 50,000" in errors[0]["message"]
    # the same shape with smaller pages runs, and says what it cost
    response = await api.post(query, {"n": 5})
    body = response.json()
    assert "errors" not in body
    assert body["extensions"]["cost"]["nodes"] == 100 + 500 + 5_000
    assert body["extensions"]["cost"]["requestedQueryCost"] == 56


@pytest.mark.usefixtures("token")
async def test_at_most_three_validation_errors(api: GraphQLClient) -> None:
    errors = await api.errors("{ a1 b1 c1 d1 e1 }")
    assert len(errors) == 3
    assert set(error_codes(errors)) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_no_schema_hints_without_a_token(api: GraphQLClient) -> None:
    errors = await api.errors('mutation { staffLogin(emial: "a@b.c", password: "x") { token } }')
    assert all("Did you mean" not in error["message"] for error in errors)
    assert error_codes(errors)[0] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.usefixtures("token")
async def test_http_rules(api: GraphQLClient, http: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {api.token}"}
    # a body too large
    big = {"query": "{ viewer { name } }", "variables": {"pad": "x" * 100_001}}
    too_large = await http.post("/graphql", json=big, headers=auth)
    assert too_large.status_code == 413
    assert too_large.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    # form posts are refused (a browser could send them cross-site)
    form = await http.post("/graphql", data={"query": "{ viewer { name } }"}, headers=auth)
    assert form.status_code == 400
    plain = await http.post(
        "/graphql",
        content='{"query": "{ viewer { name } }"}',
        headers={**auth, "Content-Type": "text/plain"},
    )
    assert plain.status_code == 400
    # no batches
    batch = await http.post("/graphql", json=[{"query": "{ viewer { name } }"}] * 2, headers=auth)
    assert batch.status_code == 400
    # GET reads, never writes
    read = await http.get("/graphql", params={"query": "{ viewer { name } }"}, headers=auth)
    assert read.status_code == 200
    assert read.json()["data"]["viewer"]["name"]
    write = await http.get(
        "/graphql",
        params={"query": 'mutation { clientAvatarReset(id: "x") { userErrors { code } } }'},
        headers=auth,
    )
    assert write.status_code in (400, 405)


async def test_cors_only_for_listed_origins(
    settings: Settings, engine: Any, sessionmaker: Any
) -> None:
    from gql.app import create_app

    app = create_app(
        settings.model_copy(update={"cors_origins": ["https://admin.example.com"]}),
        engine=engine,
        sessionmaker=sessionmaker,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        allowed = await http.options(
            "/graphql", headers={"Origin": "https://admin.example.com", **preflight}
        )
        refused = await http.options(
            "/graphql", headers={"Origin": "https://evil.example.com", **preflight}
        )
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example.com"
    assert "access-control-allow-origin" not in refused.headers


async def test_introspection_is_off_in_production(
    settings: Settings, engine: Any, sessionmaker: Any, factory: Factory
) -> None:
    from gql.app import create_app

    token = await factory.admin_token()
    production = settings.model_copy(update={"environment": "production", "secret_key": None})
    app = create_app(production, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = GraphQLClient(http)
        errors = await client.errors("{ __schema { queryType { name } } }", token=token)
        assert set(error_codes(errors)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection" in errors[0]["message"].lower()
        assert (await client("{ __typename viewer { name } }", token=token))[
            "__typename"
        ] == "Query"


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()
