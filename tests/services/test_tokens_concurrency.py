"""A token minted while the token minting it is revoked, over separate connections that
really commit: either the minting is refused, or the new token is revoked with its parent."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

from clientdesk.settings import Settings
from db.models import ApiToken
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from tests.servers import seed_admin_and_client

MINT = """
mutation($input: TokenCreateInput!) {
  tokenCreate(input: $input) { token apiToken { id } userErrors { code } }
}
"""
REVOKE = "mutation($id: ID!) { tokenRevoke(id: $id) { userErrors { code } } }"
ROUNDS = 12


@pytest.fixture
async def http_and_url(scratch_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    seeded = await seed_admin_and_client(scratch_url)
    engine = create_engine(scratch_url, pool_size=10, max_overflow=10)
    app = create_app(Settings(database_url=scratch_url), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stack.test") as http:
        yield http, scratch_url, seeded.tokens[0]
    await engine.dispose()


async def post(http: httpx.AsyncClient, token: str, query: str, variables: Any) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    for error in body.get("errors") or ():
        assert error["extensions"]["code"] == "UNAUTHENTICATED", body
    return body


async def test_no_token_outlives_a_parent_revoked_while_it_was_minted(
    http_and_url: tuple[httpx.AsyncClient, str, str],
) -> None:
    http, url, admin = http_and_url
    scopes = {"name": "p", "scopes": ["CLIENTS_READ", "TOKENS_WRITE"]}
    outcomes = set()
    for _ in range(ROUNDS):
        # given a parent token, minted by the admin's
        parent = (await post(http, admin, MINT, {"input": scopes}))["data"]["tokenCreate"]
        # when the parent mints a child while the admin revokes the parent
        barrier = asyncio.Barrier(2)

        async def mint(parent_token: str = parent["token"], barrier: Any = barrier) -> Any:
            await barrier.wait()
            return await post(http, parent_token, MINT, {"input": {**scopes, "name": "c"}})

        async def revoke(parent_id: str = parent["apiToken"]["id"], barrier: Any = barrier) -> Any:
            await barrier.wait()
            return await post(http, admin, REVOKE, {"id": parent_id})

        minted, revoked = await asyncio.gather(mint(), revoke())
        assert revoked["data"]["tokenRevoke"]["userErrors"] == []
        child = (minted.get("data") or {}).get("tokenCreate") or {}
        outcomes.add("minted" if child.get("token") else "refused")
        # then a child that was minted stops with its parent
        if child.get("token"):
            answer = await post(http, child["token"], "{ viewer { name } }", {})
            assert answer.get("errors"), "a token outlived the token that minted it"
            assert answer["errors"][0]["extensions"]["reason"] == "revoked"
    # and the database holds no token in force under a revoked one
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        parent_row = aliased(ApiToken)
        alive_under_revoked = (
            await session.execute(
                select(ApiToken.id)
                .join(parent_row, parent_row.id == ApiToken.parent_id)
                .where(parent_row.revoked_at.is_not(None), ApiToken.revoked_at.is_(None))
            )
        ).all()
    await engine.dispose()
    assert alive_under_revoked == []
    assert outcomes  # each round ended one of the two ways
