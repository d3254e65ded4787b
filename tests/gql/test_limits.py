"""Abuse limits, refused before anything runs, each with its own code."""

import base64
import json
from typing import Any

import httpx
import pytest
from graphql import parse

from clientdesk.settings import Settings
from gql.limits import Limits, ShapeWalk, check_document
from gql.node import to_global_id
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
async def test_a_document_sent_again_costs_what_its_new_variables_ask(api: GraphQLClient) -> None:
    # estimates are kept per document and the values of the variables they read
    query = """query($n: Int, $id: ID) { clients(first: 100) { nodes { subAccounts(first: $n)
        { nodes { id } } } } client(id: $id) { id } }"""
    costs = []
    one, two = to_global_id("Client", 10**9), to_global_id("Client", 10**9 + 1)
    for n, id_ in ((5, one), (5, two), (7, one), (None, one), (5, one)):
        body = (await api.post(query, {"n": n, "id": id_})).json()
        assert "errors" not in body, body
        costs.append(body["extensions"]["cost"]["nodes"])
    assert costs == [100 + 500, 100 + 500, 100 + 700, 100 + 1_000, 100 + 500]


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
    big = {"query": "{ viewer { name } }", "variables": {"pad": "x" * 1_000_001}}
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


def fan_out(levels: int, leaf: str = "__typename", on: str = "Query") -> str:
    """F0 holds `leaf`; each F(n) spreads F(n-1) twice: 2**levels copies once expanded."""
    fragments = [f"fragment F0 on {on} {{ {leaf} }}"] + [
        f"fragment F{n} on {on} {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return " ".join(fragments)


class CountingWalk(ShapeWalk):
    """The shape walk, counting the selection sets it visits."""

    visits = 0

    def selection_set(self, selection_set: Any) -> Any:
        self.visits += selection_set is not None
        return super().selection_set(selection_set)


@pytest.mark.parametrize("levels", [10, 40, 200])
def test_document_checks_visit_each_fragment_once(levels: int) -> None:
    # given a fan-out that expands to 2**levels aliases
    document = parse(
        f"query {{ ...F{levels} }} " + fan_out(levels, leaf="a: __typename b: viewer { id }"),
        max_tokens=100_000,
    )
    # when its shape is walked
    walk = CountingWalk(document)
    shape = walk.selection_set(document.definitions[0].selection_set)  # type: ignore[attr-defined]
    # then each selection set was visited once (the operation's, each fragment's, viewer's)
    assert walk.visits == 1 + (levels + 1) + 1
    assert shape.aliases == 2 * 2**levels
    assert shape.depth == 2
    errors = check_document(document, Limits())
    assert [error.extensions["code"] for error in errors] == ["TOO_MANY_ALIASES"]  # type: ignore[index]


async def test_fragment_fan_out_without_a_token_is_cheap(api: GraphQLClient) -> None:
    # 22 levels are answered at once (the executor collects each fragment once)...
    body = (await api.post("query { ...F22 } " + fan_out(22))).json()
    assert body["data"] == {"__typename": "Query"}
    # ...and 40 levels no longer fit the token limit of callers without a token
    errors = await api.errors("query { ...F40 } " + fan_out(40))
    assert error_codes(errors) == ["TOO_MANY_TOKENS"]
    assert "more than 300 tokens" in errors[0]["message"]
    # nothing beyond signing in is even validated for them
    errors = await api.errors("query { ...F3 } " + fan_out(3, leaf="viewer { nme }"))
    assert error_codes(errors) == ["UNAUTHENTICATED"]


@pytest.mark.usefixtures("token")
async def test_fragment_fan_out_of_a_list_is_counted_expanded(api: GraphQLClient) -> None:
    leaf = "clients(first: 1) { nodes { id } }"
    errors = await api.errors("query { ...F30 } " + fan_out(30, leaf=leaf))
    assert error_codes(errors) == ["QUERY_TOO_COSTLY"]
    assert f"{2**30:,} nodes" in errors[0]["message"]


@pytest.mark.usefixtures("token")
async def test_nodes_multiply_what_is_below_them(api: GraphQLClient) -> None:
    ids = [gid("Client", n) for n in range(1, 101)]
    field = "nodes(ids: $ids) { ... on Client { creditEntries(first: 100) { nodes { id } } } }"
    query = "query($ids: [ID!]!) { " + " ".join(f"a{n}: {field}" for n in range(5)) + " }"
    # 5 x (100 ids + 100 x 100 entries)
    errors = await api.errors(query, {"ids": ids})
    assert error_codes(errors) == ["QUERY_TOO_COSTLY"]
    assert "50,500 nodes" in errors[0]["message"]
    body = (await api.post(query.replace("first: 100", "first: 2"), {"ids": ids[:3]})).json()
    assert body["extensions"]["cost"]["nodes"] == 5 * (3 + 3 * 2)


@pytest.mark.usefixtures("token")
async def test_cost_reads_variable_defaults(api: GraphQLClient) -> None:
    query = """query($n: Int = 100) { clients(first: $n) { nodes {
        subAccounts(first: $n) { nodes { creditEntries(first: $n) { nodes { id } } } } } } }"""
    errors = await api.errors(query)
    assert error_codes(errors) == ["QUERY_TOO_COSTLY"]
    assert "1,010,100 nodes" in errors[0]["message"]
    body = (await api.post(query, {"n": 3})).json()
    assert body["extensions"]["cost"]["nodes"] == 3 + 9 + 27


@pytest.mark.usefixtures("token")
async def test_mutation_fields_are_charged_through_fragments(
    api: GraphQLClient, factory: Factory
) -> None:
    client = await factory.client(login="payee")
    fields = " ".join(
        f'a{n}: clientAvatarReset(id: "{gid("Client", client.id)}") {{ userErrors {{ code }} }}'
        for n in range(12)
    )
    body = (await api.post(f"mutation {{ ...M }} fragment M on Mutation {{ {fields} }}")).json()
    assert "errors" not in body, body
    assert body["extensions"]["cost"]["requestedQueryCost"] == 12 * 10


@pytest.mark.usefixtures("token")
async def test_expensive_fields_are_capped_per_request(api: GraphQLClient) -> None:
    two = """{ a: passwordStrength(password: "x") { score }
        b: passwordStrength(password: "y") { score } }"""
    assert len(await api(two)) == 2
    three = (
        "{ ...P } fragment P on Query { "
        + " ".join(f'a{n}: passwordStrength(password: "x") {{ score }}' for n in range(3))
        + " }"
    )
    errors = await api.errors(three)
    assert error_codes(errors) == ["QUERY_TOO_COSTLY"]
    assert "3 uses of expensive fields" in errors[0]["message"]
    logins = " ".join(
        f'a{n}: staffLogin(email: "a@b.c", password: "x") {{ token }}' for n in range(3)
    )
    errors = await api.errors(f"mutation {{ {logins} }}", token="")
    assert error_codes(errors) == ["QUERY_TOO_COSTLY"]


@pytest.mark.parametrize(
    ("document", "variables", "field"),
    [
        ('mutation { staffLogin(email: "\\u0000", password: "x") { token } }', {}, None),
        (
            'mutation($e: String!) { staffLogin(email: $e, password: "x") { token } }',
            {"e": "a\x00b"},
            "e",
        ),
        (
            "query($f: ClientFilter) { clients(filter: $f) { nodes { id } } }",
            {"f": {"login": "x\ud800"}},
            "f.login",
        ),
        (
            "query($s: String) { clients(search: $s) { nodes { id } } }",
            {"s": "\x00"},
            "s",
        ),
    ],
)
async def test_text_no_database_stores_is_refused(
    api: GraphQLClient,
    http: httpx.AsyncClient,
    factory: Factory,
    document: str,
    variables: dict[str, Any],
    field: str | None,
) -> None:
    token = await factory.admin_token()
    body = json.dumps({"query": document, "variables": variables})  # escapes surrogates
    for _ in range(2):  # the second time on the compiled path, where there is one
        response = await http.post(
            "/graphql",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        errors = response.json()["errors"]
        if "\\ud800" in body:  # not UTF-8: the body is not JSON (RFC 8259) to begin with
            assert (response.status_code, error_codes(errors)) == (400, ["BAD_REQUEST"])
            continue
        assert error_codes(errors) == ["BAD_USER_INPUT"]
        assert "NUL characters or unpaired surrogates" in errors[0]["message"]
        assert errors[0]["extensions"].get("field") == field


async def test_no_schema_hints_where_introspection_is_off(
    settings: Settings, engine: Any, sessionmaker: Any, factory: Factory
) -> None:
    from gql.app import create_app

    token = await factory.admin_token()
    production = settings.model_copy(update={"environment": "production"})
    app = create_app(production, engine=engine, sessionmaker=sessionmaker)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = GraphQLClient(http)
        # a field of the document, and a field of an input sent as a variable
        typo = await client.errors("{ viewer { nme } }", token=token)
        variable = await client.errors(
            "query($f: ClientFilter) { clients(filter: $f) { nodes { id } } }",
            {"f": {"logn": "x"}},
            token=token,
        )
    for errors in (typo, variable):
        assert errors[0]["extensions"]["code"] in {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}
        assert all("Did you mean" not in error["message"] for error in errors), errors
    assert "nme" in typo[0]["message"]
