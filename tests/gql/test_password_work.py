"""Passwords of any length get an answer, never a 500; scoring and hashing wait for their turn
off the event loop, so the server answers other requests meanwhile."""

import asyncio
import threading
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client, ClientPasswordToken
from gql.node import to_global_id
from services import passwords
from services.auth import token_digest, verify_password
from services.passwords import MAX_LENGTH
from tests.api import GraphQLClient
from tests.conftest import FakeClock
from tests.factories import Factory

STRENGTH = """
query($p: String!) { passwordStrength(password: $p) { score meetsPolicy suggestions } }
"""
CREATE = """
mutation($input: ClientCreateInput!) {
  clientCreate(input: $input) { client { login } userErrors { field code } }
}
"""
PASSWORD = """
mutation($id: ID!, $password: String!) {
  clientPasswordChange(id: $id, password: $password) { client { login } userErrors { field code } }
}
"""
LOGIN = """
mutation($email: String!, $password: String!) {
  staffLogin(email: $email, password: $password) { token userErrors { field code } }
}
"""
# zxcvbn 4.5 refuses more than 72 characters; l33t characters make it slow
LONG = "correct horse battery staple " + "1|7@4$5(0+3" * 30


def long_password(length: int) -> str:
    assert length <= len(LONG)
    return LONG[:length]


@pytest.fixture
async def admin(api: GraphQLClient, factory: Factory) -> str:
    api.token = await factory.admin_token()
    return api.token


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("length", [72, 73, 100, MAX_LENGTH, MAX_LENGTH + 1, 5000])
async def test_password_strength_answers_any_length(api: GraphQLClient, length: int) -> None:
    password = (LONG * 20)[:length]
    rated = (await api(STRENGTH, {"p": password}))["passwordStrength"]
    assert rated["score"] == 4
    assert rated["meetsPolicy"] is (length <= MAX_LENGTH)
    if length > MAX_LENGTH:
        assert rated["suggestions"][0] == f"Use at most {MAX_LENGTH} characters."


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    ("length", "errors"),
    [
        (73, []),
        (MAX_LENGTH, []),
        (MAX_LENGTH + 1, [{"field": ["input", "password"], "code": "TOO_LONG"}]),
    ],
)
async def test_client_create_takes_long_passwords_up_to_the_maximum(
    api: GraphQLClient, session: AsyncSession, length: int, errors: list[object]
) -> None:
    password = long_password(length)
    payload = (
        await api(
            CREATE,
            {
                "input": {
                    "login": "longpass",
                    "password": password,
                    "currency": "EUR",
                    "email": "l@example.com",
                }
            },
        )
    )["clientCreate"]
    assert payload["userErrors"] == errors
    stored = await session.scalar(select(Client).where(Client.login == "longpass"))
    if errors:
        assert stored is None
    else:
        assert stored is not None
        assert verify_password(stored.password_hash, password)


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize(
    ("length", "errors"),
    [(100, []), (MAX_LENGTH + 1, [{"field": ["password"], "code": "TOO_LONG"}])],
)
async def test_client_password_change_takes_long_passwords_up_to_the_maximum(
    api: GraphQLClient, factory: Factory, length: int, errors: list[object]
) -> None:
    client = await factory.client()
    global_id = to_global_id("Client", client.id)
    payload = (await api(PASSWORD, {"id": global_id, "password": long_password(length)}))[
        "clientPasswordChange"
    ]
    assert payload["userErrors"] == errors


@pytest.mark.parametrize(
    ("length", "status", "answer"),
    [
        (100, 200, {"login": "linked", "passwordSet": True}),
        (MAX_LENGTH + 1, 400, "TOO_LONG"),
    ],
)
async def test_cabinet_set_password_takes_long_passwords_up_to_the_maximum(
    http: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    clock: FakeClock,
    length: int,
    status: int,
    answer: object,
) -> None:
    # given a client with a set-password link
    client = await factory.client(login="linked")
    session.add(
        ClientPasswordToken(
            client_id=client.id,
            token_hash=token_digest("the-link"),
            created_at=clock(),
            expires_at=clock() + timedelta(hours=1),
        )
    )
    await session.commit()
    # when a long password is set with it
    response = await http.post(
        "/cabinet/set-password", json={"token": "the-link", "password": long_password(length)}
    )
    # then it is taken, or refused for its length
    assert response.status_code == status
    body = response.json()
    assert (body if status == 200 else body["error"]["code"]) == answer


@pytest.mark.parametrize(
    ("password", "signed_in"),
    [(long_password(100), True), (long_password(100)[:-1], False), ("x" * 10_000, False)],
)
async def test_staff_login_with_long_passwords(
    api: GraphQLClient, factory: Factory, password: str, signed_in: bool
) -> None:
    await factory.staff(email="long@example.com", password=long_password(100))
    payload = (await api(LOGIN, {"email": "long@example.com", "password": password}))["staffLogin"]
    assert (payload["token"] is not None) is signed_in
    assert payload["userErrors"] == (
        [] if signed_in else [{"field": ["password"], "code": "INVALID_CREDENTIALS"}]
    )


@pytest.mark.usefixtures("admin")
async def test_the_server_answers_while_a_scoring_waits_for_its_turn(
    api: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given the process's scoring busy
    release = threading.Event()
    busy = asyncio.create_task(passwords.SCORING.run(release.wait))
    try:
        # when a password is to be rated
        rating = asyncio.create_task(api.post(STRENGTH, {"p": LONG[:40]}))
        # then the server answers other requests meanwhile
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert not rating.done()
    finally:
        release.set()
    await busy
    # and the rating comes once it is its turn
    rated = (await rating).json()["data"]["passwordStrength"]
    assert rated["meetsPolicy"] is True


async def test_a_password_waiting_to_be_scored_holds_no_lock(scratch_url: str) -> None:
    from clientdesk.settings import Settings
    from db.session import create_engine
    from gql.app import create_app
    from tests.servers import seed_admin_and_client

    # given a server on a database of its own (each request on its own connection), and the
    # process's scoring busy
    seeded = await seed_admin_and_client(scratch_url)
    engine = create_engine(scratch_url)
    app = create_app(
        Settings(database_url=scratch_url, rate_limit_points_per_minute=0), engine=engine
    )
    release = threading.Event()
    busy = asyncio.create_task(passwords.SCORING.run(release.wait))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            api = GraphQLClient(http)
            api.token = seeded.tokens[0]
            # when a new client waits for its password to be scored
            new = {"login": "waiting", "password": LONG[:40], "currency": "EUR", "email": "w@x.io"}
            create = asyncio.create_task(api.post(CREATE, {"input": new}))
            # then another change goes through meanwhile (on SQLite, too: no write lock held)
            credit = asyncio.create_task(
                api.post(
                    "mutation($i: CreditAddInput!) { creditAdd(input: $i) "
                    "{ userErrors { code } } }",
                    {
                        "i": {
                            "clientId": to_global_id("Client", seeded.client_id),
                            "amount": "5.00",
                            "paymentMethod": "CASH",
                        }
                    },
                )
            )
            done, _ = await asyncio.wait({create, credit}, return_when=asyncio.FIRST_COMPLETED)
            assert done == {credit}
            assert (await credit).json()["data"]["creditAdd"]["userErrors"] == []
            release.set()
            created = (await create).json()["data"]["clientCreate"]
            assert created == {"client": {"login": "waiting"}, "userErrors": []}
    finally:
        release.set()
        await busy
        await engine.dispose()
