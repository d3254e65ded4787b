"""Trusted documents (persisted operations): a registered document sent by its id
(`{"documentId": "sha256:…"}`, GraphQL-over-HTTP's persisted documents appendix), tokens and
servers that accept nothing else, and the registry behind them."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from clientdesk.settings import Settings
from gql.app import create_app
from services import documents
from services.errors import DomainError
from tests.conftest import FakeClock
from tests.factories import Factory

CLIENT = """query Client($login: String!) {
  client(login: $login) { login name email }
}"""
VIEWER = "query Viewer { viewer { email } }"
TOKEN_CREATE = """mutation TokenCreate($input: TokenCreateInput!) {
  tokenCreate(input: $input) {
    token
    apiToken { trustedDocumentsOnly }
    userErrors { field code }
  }
}"""
GRAPHQL_RESPONSE = "application/graphql-response+json"


async def register(session: AsyncSession, clock: FakeClock, *bodies: str) -> list[str]:
    """Register documents as `clientdesk documents add` does; their ids."""
    found = [documents.checked(body, claimed_id=None, where="test") for body in bodies]
    await documents.register(session, documents=found, source="test", now=clock())
    await session.commit()
    return [document.id for document in found]


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def post(
    http: httpx.AsyncClient, payload: dict[str, Any], token: str | None = None, **headers: str
) -> httpx.Response:
    return await http.post("/graphql", json=payload, headers={**bearer(token), **headers})


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


@pytest.fixture(params=["compiled", "executor"])
def settings(request: pytest.FixtureRequest) -> Settings:
    # every case on both execution paths: the compiled one knows `client(login)`
    return Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        log_format="console",
        rate_limit_points_per_minute=0,
        jobs_in_process=False,
        compiled_operations=request.param == "compiled",
    )


def test_the_id_is_the_sha256_of_the_text_as_the_appendix_has_it() -> None:
    # the appendix's own example (no trailing newline)
    example = "query ($id: ID!) {\n  user(id: $id) {\n    name\n  }\n}"
    assert documents.document_id(example) == (
        "sha256:7dba4bd717b41f10434822356a93c32b1fb4907b983e854300ad839f84cdcd6e"
    )


async def test_a_registered_document_answers_as_its_text_by_post_and_get(
    http: httpx.AsyncClient, session: AsyncSession, factory: Factory, clock: FakeClock, app: Any
) -> None:
    # given a client, a token and the document registered
    await factory.client(login="acme", name="Acme")
    token = await factory.admin_token()
    [document_id] = await register(session, clock, CLIENT)
    variables = {"login": "acme"}
    # when it is sent as text, by id in a POST, and by id in a GET
    ad_hoc = await post(http, {"query": CLIENT, "variables": variables}, token)
    by_post = await post(http, {"documentId": document_id, "variables": variables}, token)
    by_get = await http.get(
        "/graphql",
        params={"documentId": document_id, "variables": orjson.dumps(variables).decode()},
        headers=bearer(token),
    )
    # then all three answer the same
    assert ad_hoc.status_code == by_post.status_code == by_get.status_code == 200
    assert ad_hoc.json()["data"]["client"]["name"] == "Acme"
    assert by_post.json() == ad_hoc.json() == by_get.json()
    # and a browser's GET by id (Accept: text/html) runs it too, instead of GraphiQL's page
    from_browser = await http.get(
        "/graphql",
        params={"documentId": document_id, "variables": orjson.dumps(variables).decode()},
        headers={**bearer(token), "Accept": "text/html"},
    )
    assert from_browser.json() == ad_hoc.json()
    # and where the compiled path runs, it ran the POSTs, by text and by id alike
    if app.state.compiled is not None:
        assert app.state.compiled.answered == 2


async def test_a_mutation_by_get_is_refused_even_by_id(
    http: httpx.AsyncClient, session: AsyncSession, factory: Factory, clock: FakeClock
) -> None:
    token = await factory.admin_token()
    [document_id] = await register(session, clock, TOKEN_CREATE)
    variables = {"input": {"name": "x", "scopes": ["CLIENTS_READ"]}}
    response = await http.get(
        "/graphql",
        params={"documentId": document_id, "variables": orjson.dumps(variables).decode()},
        headers=bearer(token),
    )
    assert response.status_code == 405
    assert codes(response) == ["METHOD_NOT_ALLOWED"]


async def test_an_unknown_document_is_one_error(http: httpx.AsyncClient, factory: Factory) -> None:
    # given a token and an id nothing is registered under
    token = await factory.admin_token()
    unknown = documents.document_id("{ nothingRegistered }")
    # when it is sent, with each media type
    as_json = await post(http, {"documentId": unknown}, token)
    as_graphql = await post(http, {"documentId": unknown}, token, Accept=GRAPHQL_RESPONSE)
    # then a GraphQL response with a single error: 200 as application/json, 400 as
    # application/graphql-response+json (as any request that could not run)
    assert as_json.status_code == 200
    assert codes(as_json) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert "data" not in as_json.json()
    assert as_graphql.status_code == 400
    assert as_graphql.headers["content-type"] == GRAPHQL_RESPONSE
    assert codes(as_graphql) == ["PERSISTED_QUERY_NOT_FOUND"]


HEX = "0" * 64


@pytest.mark.parametrize(
    ("document_id", "complaint"),
    [
        (f"sha256:{HEX.upper()}A", "lower-case"),
        (f"sha256:{'A' * 64}", "lower-case"),
        ("sha256:abc", "lower-case"),
        (f"sha1:{HEX[:40]}", "lower-case"),
        (HEX, "lower-case"),  # a custom id (no prefix): not ours
        (f"x-mine:{HEX}", "lower-case"),
        ("", "lower-case"),
        (123, "must be a string"),
        (["sha256:" + HEX], "must be a string"),
    ],
)
async def test_a_malformed_document_id_is_a_bad_request(
    http: httpx.AsyncClient, document_id: object, complaint: str
) -> None:
    # no token needed: the request is refused before any look-up
    response = await post(http, {"documentId": document_id})
    assert response.status_code == 400
    assert codes(response) == ["BAD_REQUEST"]
    assert complaint in response.json()["errors"][0]["message"]
    if isinstance(document_id, str):  # and the same by GET
        by_get = await http.get("/graphql", params={"documentId": document_id})
        assert by_get.status_code == 400
        assert codes(by_get) == ["BAD_REQUEST"]


async def test_query_and_document_id_together_are_a_bad_request(
    http: httpx.AsyncClient, session: AsyncSession, factory: Factory, clock: FakeClock
) -> None:
    token = await factory.admin_token()
    [document_id] = await register(session, clock, VIEWER)
    by_post = await post(http, {"query": VIEWER, "documentId": document_id}, token)
    by_get = await http.get(
        "/graphql", params={"query": VIEWER, "documentId": document_id}, headers=bearer(token)
    )
    for response in (by_post, by_get):
        assert response.status_code == 400
        assert codes(response) == ["BAD_REQUEST"]
        assert "either `query` or `documentId`" in response.json()["errors"][0]["message"]


async def test_a_trusted_documents_only_token_sends_registered_documents_only(
    http: httpx.AsyncClient, session: AsyncSession, factory: Factory, clock: FakeClock
) -> None:
    # given a partner's token marked trusted-documents-only, and one registered document
    staff = await factory.staff(email="partner@example.com")
    token = await factory.token(staff, trusted_documents_only=True)
    [document_id] = await register(session, clock, VIEWER)
    # when it sends a query of its own, and then the registered one by id
    ad_hoc = await post(http, {"query": VIEWER}, token)
    strict = await post(http, {"query": VIEWER}, token, Accept=GRAPHQL_RESPONSE)
    registered = await post(http, {"documentId": document_id}, token)
    # then the first is refused with a clear code, nothing having run; the second runs
    assert ad_hoc.status_code == 200
    assert codes(ad_hoc) == ["TRUSTED_DOCUMENTS_ONLY"]
    assert "data" not in ad_hoc.json()
    assert strict.status_code == 400
    assert codes(strict) == ["TRUSTED_DOCUMENTS_ONLY"]
    assert registered.json()["data"] == {"viewer": {"email": "partner@example.com"}}


async def test_other_tokens_still_send_queries(http: httpx.AsyncClient, factory: Factory) -> None:
    # CLIENTDESK_TRUSTED_DOCUMENTS=tokens (the default): unmarked tokens are unaffected
    token = await factory.admin_token()
    response = await post(http, {"query": VIEWER}, token)
    assert "errors" not in response.json()


async def test_a_trusted_documents_only_token_mints_no_unrestricted_token(
    http: httpx.AsyncClient, session: AsyncSession, factory: Factory, clock: FakeClock
) -> None:
    # given a trusted-documents-only token and tokenCreate registered
    token = await factory.token(await factory.staff(), trusted_documents_only=True)
    [document_id, _] = await register(session, clock, TOKEN_CREATE, VIEWER)

    async def token_create(**extra: Any) -> dict[str, Any]:
        variables = {"input": {"name": "child", "scopes": ["CLIENTS_READ"], **extra}}
        response = await post(http, {"documentId": document_id, "variables": variables}, token)
        payload: dict[str, Any] = response.json()["data"]["tokenCreate"]
        return payload

    # when it asks for a token free of the restriction
    refused = await token_create(trustedDocumentsOnly=False)
    # then it is refused; asked without saying, the child is restricted as it is
    assert refused["token"] is None
    assert refused["userErrors"] == [
        {"field": ["input", "trustedDocumentsOnly"], "code": "NOT_ALLOWED"}
    ]
    inherited = await token_create()
    assert inherited["apiToken"] == {"trustedDocumentsOnly": True}
    child = await post(http, {"query": VIEWER}, inherited["token"])
    assert codes(child) == ["TRUSTED_DOCUMENTS_ONLY"]


async def test_an_unrestricted_token_may_mint_a_restricted_one(
    http: httpx.AsyncClient, factory: Factory
) -> None:
    token = await factory.admin_token()
    variables = {
        "input": {"name": "partner", "scopes": ["CLIENTS_READ"], "trustedDocumentsOnly": True}
    }
    created = await post(http, {"query": TOKEN_CREATE, "variables": variables}, token)
    payload = created.json()["data"]["tokenCreate"]
    assert payload["apiToken"] == {"trustedDocumentsOnly": True}
    assert codes(await post(http, {"query": VIEWER}, payload["token"])) == [
        "TRUSTED_DOCUMENTS_ONLY"
    ]


@pytest.fixture
async def strict_http(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: FakeClock,
) -> AsyncIterator[httpx.AsyncClient]:
    """A server run with CLIENTDESK_TRUSTED_DOCUMENTS=all."""
    strict = settings.model_copy(update={"trusted_documents": "all"})
    app = create_app(strict, engine=engine, sessionmaker=sessionmaker, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://clientdesk.test") as http:
        yield http


async def test_the_all_policy_runs_registered_documents_only(
    strict_http: httpx.AsyncClient, session: AsyncSession, factory: Factory, clock: FakeClock
) -> None:
    # given a server that runs registered documents only, an admin's token, one document
    token = await factory.token(await factory.staff(email="admin@example.com"))
    [document_id] = await register(session, clock, VIEWER)
    # when queries are sent as text, with and without a token, and by GET
    refused = [
        await post(strict_http, {"query": VIEWER}, token),
        await post(strict_http, {"query": VIEWER}),
        await strict_http.get("/graphql", params={"query": VIEWER}, headers=bearer(token)),
    ]
    registered = await post(strict_http, {"documentId": document_id}, token)
    graphiql = await strict_http.get("/graphql", headers={"Accept": "text/html"})
    # then each query sent as text is refused, the registered one runs, and GraphiQL's page
    # is still served (its queries are refused like any other)
    for response in refused:
        assert codes(response) == ["TRUSTED_DOCUMENTS_ONLY"], response.text
    assert registered.json()["data"] == {"viewer": {"email": "admin@example.com"}}
    assert graphiql.status_code == 200
    assert "graphiql" in graphiql.text.lower()


async def test_a_document_registered_by_another_process_is_found(
    http: httpx.AsyncClient, connection: AsyncConnection, factory: Factory
) -> None:
    # given a server that was asked for a document before it was registered
    token = await factory.admin_token()
    document_id = documents.document_id(VIEWER)
    before = await post(http, {"documentId": document_id}, token)
    assert codes(before) == ["PERSISTED_QUERY_NOT_FOUND"]
    # when another process registers it (a row written directly)
    await connection.execute(
        text(
            "INSERT INTO trusted_documents (id, body, operation_names, source) "
            "VALUES (:id, :body, 'Viewer', 'elsewhere')"
        ),
        {"id": document_id, "body": VIEWER},
    )
    # then the next request finds it (a miss is not remembered)
    after = await post(http, {"documentId": document_id}, token)
    assert "errors" not in after.json()
    assert after.json()["data"]["viewer"]["email"]


async def test_an_anonymous_callers_unknown_id_is_not_looked_up_again(
    http: httpx.AsyncClient, connection: AsyncConnection, factory: Factory
) -> None:
    # given an id an anonymous caller asked for before anything was registered under it
    document_id = documents.document_id(VIEWER)
    assert codes(await post(http, {"documentId": document_id})) == ["PERSISTED_QUERY_NOT_FOUND"]
    await connection.execute(
        text(
            "INSERT INTO trusted_documents (id, body, operation_names, source) "
            "VALUES (:id, :body, 'Viewer', 'elsewhere')"
        ),
        {"id": document_id, "body": VIEWER},
    )
    # when anonymous callers send it again, then it is not looked up again (a flood of one
    # unknown id costs no database work)
    assert codes(await post(http, {"documentId": document_id})) == ["PERSISTED_QUERY_NOT_FOUND"]
    # but a token's request looks again and finds it, and from then on everyone does
    token = await factory.admin_token()
    assert "errors" not in (await post(http, {"documentId": document_id}, token)).json()
    assert codes(await post(http, {"documentId": document_id})) == ["UNAUTHENTICATED"]


async def test_a_found_document_is_kept_in_memory(
    http: httpx.AsyncClient, connection: AsyncConnection, factory: Factory, app: Any
) -> None:
    # given a document the server has run once
    token = await factory.admin_token()
    document_id = documents.document_id(VIEWER)
    await connection.execute(
        text(
            "INSERT INTO trusted_documents (id, body, operation_names, source) "
            "VALUES (:id, :body, 'Viewer', 'test')"
        ),
        {"id": document_id, "body": VIEWER},
    )
    await post(http, {"documentId": document_id}, token)
    # when its row is gone (a document never changes: its id is its hash)
    await connection.execute(text("DELETE FROM trusted_documents"))
    # then the server still answers it from memory, without the database
    again = await post(http, {"documentId": document_id}, token)
    assert "errors" not in again.json()


CODEGEN_MANIFEST = {  # graphql-codegen's client preset, persistedDocuments with sha256
    documents.document_id(VIEWER).removeprefix("sha256:"): VIEWER,
    documents.document_id(CLIENT): CLIENT,  # some tools keep the prefix: taken too
}


async def test_a_codegen_manifest_is_registered_once(
    session: AsyncSession, clock: FakeClock
) -> None:
    # given graphql-codegen's persisted-documents.json
    found = documents.from_manifest(orjson.dumps(CODEGEN_MANIFEST), where="manifest.json")
    # when it is registered twice
    first = await documents.register(session, documents=found, source="web", now=clock())
    second = await documents.register(session, documents=found, source="web", now=clock())
    # then its documents are added once, under their prefixed ids, with their operations
    assert [(doc.id, new) for doc, new in first] == [
        (documents.document_id(VIEWER), True),
        (documents.document_id(CLIENT), True),
    ]
    assert [new for _, new in second] == [False, False]
    rows = list(await documents.list_documents(session))
    assert sorted((row.id, row.operation_names) for row in rows) == sorted(
        [(documents.document_id(VIEWER), "Viewer"), (documents.document_id(CLIENT), "Client")]
    )


@pytest.mark.parametrize(
    ("manifest", "complaint"),
    [
        ({HEX: VIEWER}, f"manifest.json, entry {HEX}: the id {HEX} is not the SHA-256"),
        ({"sha256:" + HEX: VIEWER}, "is not the SHA-256 of its text"),
        ({documents.document_id("{ oops"): "{ oops"}, "not a GraphQL document"),
        (
            {
                documents.document_id("fragment F on Query { viewer { email } }"): (
                    "fragment F on Query { viewer { email } }"
                )
            },
            "holds no operation",
        ),
        ({HEX: 42}, "the text is not a string"),
        ([VIEWER], "a manifest is an object"),
    ],
)
def test_a_wrong_manifest_is_refused_naming_the_entry(manifest: object, complaint: str) -> None:
    good = {documents.document_id(CLIENT): CLIENT}
    raw = orjson.dumps({**good, **manifest} if isinstance(manifest, dict) else manifest)
    with pytest.raises(DomainError) as refused:
        documents.from_manifest(raw, where="manifest.json")
    assert complaint in refused.value.message
