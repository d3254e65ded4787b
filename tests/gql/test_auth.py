"""Every operation but staffLogin needs a valid token; staffLogin issues one."""

from datetime import timedelta
from typing import Any

import pytest
from argon2 import Parameters, extract_parameters
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.enums import Scope, StaffRole
from db.models import ApiToken, StaffUser
from services import auth
from services.auth import token_digest
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

VIEWER = "query { viewer { id email name role scopes tokenExpiresAt } }"
LOGIN = """
mutation Login($email: String!, $password: String!) {
  staffLogin(email: $email, password: $password) {
    token expiresAt viewer { email role scopes } userErrors { field code message }
  }
}
"""
CLIENT = "query($login: String!) { client(login: $login) { login } }"
INTROSPECTION = "{ __schema { queryType { name } } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def refusal(errors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each error's code and the reason it gives."""
    return [(e["extensions"]["code"], e["extensions"].get("reason")) for e in errors]


async def test_anonymous_request_is_unauthenticated(api: GraphQLClient) -> None:
    # when a query is sent without a token
    errors = await api.errors(VIEWER)
    # then it is refused with UNAUTHENTICATED and nothing else, because the token is missing
    assert refusal(errors) == [("UNAUTHENTICATED", "missing")]
    assert "Authorization: Bearer" in errors[0]["message"]


async def test_anonymous_introspection_and_typos_reveal_nothing(api: GraphQLClient) -> None:
    assert error_codes(await api.errors(INTROSPECTION)) == ["UNAUTHENTICATED"]
    # a misspelt field gets no "did you mean" suggestion from the schema
    errors = await api.errors("{ clientz { id } }")
    assert error_codes(errors) == ["UNAUTHENTICATED"]
    assert "Did you mean" not in str(errors)


@pytest.mark.parametrize("token", ["cd_not-a-token", "not-even-ours", "é"])
async def test_unknown_token_is_unauthenticated(api: GraphQLClient, token: str) -> None:
    response = await api.http.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"Authorization": f"Bearer {token}".encode()},
    )
    errors = response.json()["errors"]
    assert refusal(errors) == [("UNAUTHENTICATED", "unknown")]
    assert "unknown" in errors[0]["message"]
    assert token not in response.text  # the token is not echoed


async def test_unauthenticated_is_a_401_for_graphql_response_clients(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    expired = await factory.token(await factory.staff(), expires_at=clock())
    for token, reason, challenge in (
        (None, "missing", "Bearer"),
        ("cd_unknown", "unknown", 'Bearer error="invalid_token"'),
        (expired, "expired", 'Bearer error="invalid_token"'),
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # when a client that speaks the GraphQL-over-HTTP media type is refused
        modern = await api.http.post(
            "/graphql", json={"query": VIEWER}, headers={**headers, "Accept": GRAPHQL_RESPONSE}
        )
        # then it is an HTTP 401 with the error, the reason and no data
        assert modern.status_code == 401, reason
        assert modern.headers["content-type"] == GRAPHQL_RESPONSE
        assert modern.headers["www-authenticate"] == challenge
        assert "data" not in modern.json()
        assert refusal(modern.json()["errors"]) == [("UNAUTHENTICATED", reason)]
        # and with application/json it stays a 200, as the spec asks
        legacy = await api.http.post(
            "/graphql", json={"query": VIEWER}, headers={**headers, "Accept": "application/json"}
        )
        assert legacy.status_code == 200, reason
        assert refusal(legacy.json()["errors"]) == [("UNAUTHENTICATED", reason)]


async def test_viewer_is_the_tokens_owner(api: GraphQLClient, factory: Factory) -> None:
    # given a manager's token limited to reading clients
    manager = await factory.staff(role=StaffRole.MANAGER, name="Max Manager")
    token = await factory.token(manager, scopes={Scope.CLIENTS_READ})
    # when the viewer is asked for
    data = await api(VIEWER, token=token)
    # then it is that manager, with that scope
    assert data["viewer"]["email"] == manager.email
    assert data["viewer"]["name"] == "Max Manager"
    assert data["viewer"]["role"] == "MANAGER"
    assert data["viewer"]["scopes"] == ["CLIENTS_READ"]


async def test_expired_token_stops_working(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given a token that expires in an hour
    staff = await factory.staff()
    token = await factory.token(staff, expires_at=clock() + timedelta(hours=1))
    assert (await api(VIEWER, token=token))["viewer"]["email"] == staff.email
    # when the hour has passed
    clock.advance(timedelta(hours=1))
    # then the token is refused as expired
    assert refusal(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "expired")]


async def test_revoked_token_stops_working(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    token = await factory.token(await factory.staff())
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == token_digest(token))
        .values(revoked_at=clock())
    )
    await session.commit()
    assert refusal(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "revoked")]


async def test_a_deactivated_owners_token_is_revoked(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    staff = await factory.staff()
    token = await factory.token(staff)
    await session.execute(update(StaffUser).where(StaffUser.id == staff.id).values(is_active=False))
    await session.commit()
    assert refusal(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "revoked")]


async def test_a_revoked_token_past_its_expiry_says_revoked(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    # given a token this process trusts, revoked elsewhere, whose expiry then passes
    token = await factory.token(await factory.staff(), expires_at=clock() + timedelta(hours=1))
    assert (await api(VIEWER, token=token))["viewer"]
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == token_digest(token))
        .values(revoked_at=clock())
    )
    await session.commit()
    clock.advance(timedelta(hours=1))
    # then the reason is the database's, not the cache's "expired"
    assert refusal(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "revoked")]


async def test_tokens_are_stored_hashed_and_record_their_use(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    token = await factory.token(await factory.staff())
    await api(VIEWER, token=token)
    stored = (await session.execute(select(ApiToken))).scalars().all()
    assert all(token not in (row.token_hash, row.prefix) for row in stored)
    row = next(row for row in stored if row.token_hash == token_digest(token))
    assert row.prefix == token[:12]
    assert row.last_used_at == clock()


async def test_token_without_clients_read_is_forbidden_to_read_clients(
    api: GraphQLClient, factory: Factory
) -> None:
    # given a token that may only write credits
    token = await factory.token(await factory.staff(), scopes={Scope.CREDITS_WRITE})
    await factory.client(login="alice")
    # when it reads a client
    errors = await api.errors(CLIENT, {"login": "alice"}, token=token)
    # then it is FORBIDDEN and told which scope is missing
    assert error_codes(errors) == ["FORBIDDEN"]
    assert errors[0]["extensions"]["scope"] == "clients:read"


async def test_staff_login_issues_a_working_session_token(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given a manager with a password
    await factory.staff(role=StaffRole.MANAGER, email="max@clientdesk.test", password="s3cret-pass")
    # when they sign in without any token, e-mail in another case
    variables = {"email": "MAX@clientdesk.test", "password": "s3cret-pass"}
    payload = (await api(LOGIN, variables))["staffLogin"]
    # then they get a token with every scope of their role, for 12 hours
    assert payload["userErrors"] == []
    assert payload["viewer"]["role"] == "MANAGER"
    assert "STAFF_ADMIN" not in payload["viewer"]["scopes"]
    assert "CLIENTS_WRITE" in payload["viewer"]["scopes"]
    assert payload["expiresAt"] == (clock() + timedelta(hours=12)).isoformat()
    # and the token works
    data = await api(VIEWER, token=payload["token"])
    assert data["viewer"]["email"] == "max@clientdesk.test"


async def test_staff_login_refuses_wrong_password_and_unknown_user_alike(
    api: GraphQLClient, factory: Factory
) -> None:
    await factory.staff(email="ada@clientdesk.test", password="right-password")
    wrong = await api(LOGIN, {"email": "ada@clientdesk.test", "password": "wrong-password"})
    unknown = await api(LOGIN, {"email": "nobody@clientdesk.test", "password": "x"})
    for payload in (wrong["staffLogin"], unknown["staffLogin"]):
        assert payload["token"] is None
        assert payload["userErrors"] == [
            {
                "field": ["password"],
                "code": "INVALID_CREDENTIALS",
                "message": "E-mail or password is not right",
            }
        ]


async def test_every_refused_sign_in_does_the_same_work(
    api: GraphQLClient,
    factory: Factory,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an active, a deactivated and a token-only account, hashed with other parameters
    # than the server's today (as after a change of settings, or seeded by another process)
    real = await factory.staff(email="ada@clientdesk.test", password="right-password")
    await factory.staff(email="gone@clientdesk.test", password="right-password", is_active=False)
    await factory.staff(email="bot@clientdesk.test", password=None)
    assert real.password_hash is not None
    stored = extract_parameters(real.password_hash)
    monkeypatch.setattr(auth, "_hasher", auth.PasswordHasher(time_cost=2, memory_cost=2048))
    verified: list[Parameters] = []
    verify = auth.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        verified.append(extract_parameters(password_hash or ""))
        return verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # the throttle's buckets are every attempt's alike; savepoints stand in for the begin
        # and commit of transactions here (the throttle's first on an address has its own)
        if "rate_limit" not in statement and "SAVEPOINT" not in statement:
            statements.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    attempts = {
        "unknown e-mail": ("nobody@clientdesk.test", "right-password"),
        "wrong password": ("ada@clientdesk.test", "wrong-password"),
        "deactivated": ("gone@clientdesk.test", "right-password"),
        "token-only": ("bot@clientdesk.test", "right-password"),
        "too-long address": ("a" * 300 + "@clientdesk.test", "right-password"),
        "too-long password": ("ada@clientdesk.test", "x" * 257),
    }
    work: dict[str, list[str]] = {}
    try:
        for case, (email, password) in attempts.items():
            verified.clear()
            statements.clear()
            # when each signs in
            payload = (await api(LOGIN, {"email": email, "password": password}))["staffLogin"]
            # then each gets the same answer, after one verification with the stored
            # parameters, and the same statements
            assert payload["token"] is None, case
            assert payload["userErrors"] == [
                {
                    "field": ["password"],
                    "code": "INVALID_CREDENTIALS",
                    "message": "E-mail or password is not right",
                }
            ], case
            assert verified == [stored], case
            work[case] = statements[:]
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)
    assert all(done == work["wrong password"] for done in work.values()), work
    assert len(work["wrong password"]) == 1  # the one look-up


def test_a_dummy_hash_costs_a_full_verification() -> None:
    template = auth.hash_password("anything at all")
    dummy = auth.dummy_hash_like(template)
    assert extract_parameters(dummy) == extract_parameters(template)
    with pytest.raises(VerifyMismatchError):  # computed and compared, not refused as malformed
        auth.PasswordHasher().verify(dummy, "anything at all")
    assert extract_parameters(auth.dummy_hash_like(None)) == extract_parameters(template)


async def test_token_only_staff_cannot_sign_in_with_a_password(
    api: GraphQLClient, factory: Factory
) -> None:
    await factory.staff(email="bot@clientdesk.test", password=None)
    payload = (await api(LOGIN, {"email": "bot@clientdesk.test", "password": ""}))["staffLogin"]
    assert [error["code"] for error in payload["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_anonymous_may_not_mix_login_with_other_fields(api: GraphQLClient) -> None:
    query = 'mutation { staffLogin(email: "a@b.c", password: "x") { token } } '
    query += "query Q { viewer { id } }"
    response = await api.post(query)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_sign_in_rehashes_a_password_made_with_older_parameters(
    api: GraphQLClient, factory: Factory, session: AsyncSession
) -> None:
    from db.models import StaffUser
    from services.auth import configure_password_hasher

    # given a password hashed with weaker parameters than today's
    configure_password_hasher(time_cost=1, memory_kib=512, parallelism=1)
    staff = await factory.staff(email="old@clientdesk.test", password="an old passphrase here")
    old_hash = staff.password_hash
    configure_password_hasher(time_cost=1, memory_kib=1024, parallelism=1)  # the suite's
    # when the user signs in
    payload = await api(
        LOGIN, {"email": "old@clientdesk.test", "password": "an old passphrase here"}
    )
    assert payload["staffLogin"]["token"]
    # then the stored hash was made again with today's parameters
    refreshed = await session.scalar(
        select(StaffUser.password_hash)
        .where(StaffUser.id == staff.id)
        .execution_options(populate_existing=True)
    )
    assert refreshed != old_hash
    assert "m=1024" in (refreshed or "")


REVOKE = """
mutation($id: ID!) { tokenRevoke(id: $id) { apiToken { revokedAt } userErrors { code } } }
"""


async def test_a_token_revoked_by_another_process_stops_within_a_second(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> None:
    # given a token this process has just trusted
    token = await factory.token(await factory.staff())
    assert (await api(VIEWER, token=token))["viewer"]
    # when another process revokes it (straight in the database)
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == token_digest(token))
        .values(revoked_at=clock())
    )
    await session.commit()
    # then this process keeps trusting it for at most a second (CLIENTDESK_TOKEN_CACHE_SECONDS)
    assert (await api(VIEWER, token=token))["viewer"]
    clock.advance(timedelta(seconds=1))
    assert refusal(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "revoked")]


async def test_a_token_revoked_here_stops_at_once(api: GraphQLClient, factory: Factory) -> None:
    staff = await factory.staff()
    token = await factory.token(staff)
    viewer = (await api(VIEWER, token=token))["viewer"]
    token_id = (await api("{ apiTokens { id } }", token=token))["apiTokens"][0]["id"]
    data = await api(REVOKE, {"id": token_id}, token=token)
    assert data["tokenRevoke"]["apiToken"]["revokedAt"]
    assert viewer["email"] == staff.email
    assert refusal(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "revoked")]


async def test_a_trusted_token_still_expires_on_time(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    token = await factory.token(
        await factory.staff(), expires_at=clock() + timedelta(milliseconds=500)
    )
    assert (await api(VIEWER, token=token))["viewer"]
    clock.advance(timedelta(milliseconds=500))
    assert refusal(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "expired")]
