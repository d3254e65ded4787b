""" "In cabinet" sessions outlive none of their grounds: each ground, taken away over the API
(or the clock), turns a cabinet that answered 200 into a 401 that says why; and sessions are
revocable, with the revocation audited."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import Scope, StaffRole
from db.models import ApiToken, CabinetSession, Client, StaffUser
from services.auth import token_digest
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory
from tests.gql.test_client_actions import AUDIT, BLOCK, IMPERSONATE, gid, open_cabinet

REVOKE_SESSIONS = """
mutation($clientId: ID!, $reason: String) {
  clientCabinetSessionsRevoke(clientId: $clientId, reason: $reason) {
    revokedCount client { login } userErrors { field code message }
  }
}
"""
SET_STATUS = """
mutation($ids: [ID!]!, $status: ClientStatus!) {
  clientsSetStatus(ids: $ids, status: $status) { userErrors { code } }
}
"""
UPDATE = """
mutation($id: ID!, $input: ClientUpdateInput!) {
  clientUpdate(id: $id, input: $input) { userErrors { field code } }
}
"""
DELETE = """
mutation($ids: [ID!]!) { clientsDelete(ids: $ids, confirm: true) { userErrors { code } } }
"""
TOKEN_REVOKE = """
mutation($id: ID!) { tokenRevoke(id: $id) { userErrors { code } } }
"""


@dataclass
class Scene:
    """A manager's client, the manager's token that opened its cabinet, an admin, and another
    manager."""

    api: GraphQLClient
    session: AsyncSession
    clock: FakeClock
    admin: str
    manager: StaffUser
    manager_token: str
    other_manager: StaffUser
    client: Client

    @property
    def client_gid(self) -> str:
        return gid("Client", self.client.id)

    async def as_admin(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        data = await self.api(query, variables, token=self.admin)
        payload = next(iter(data.values()))
        assert payload["userErrors"] == [], payload
        return payload  # type: ignore[no-any-return]


@pytest.fixture
async def scene(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> Scene:
    manager = await factory.staff(role=StaffRole.MANAGER, email="max@clientdesk.test")
    other = await factory.staff(role=StaffRole.MANAGER, email="mia@clientdesk.test")
    return Scene(
        api=api,
        session=session,
        clock=clock,
        admin=await factory.admin_token(),
        manager=manager,
        # expires before the cabinet session does (15 minutes), for the ground of its expiry
        manager_token=await factory.token(manager, expires_at=clock() + timedelta(minutes=10)),
        other_manager=other,
        client=await factory.client(login="acme", manager_id=manager.id),
    )


async def impersonate(scene: Scene, *, token: str, force: bool = False) -> str:
    variables = {"id": scene.client_gid, "reason": "Ticket #812", "force": force}
    payload = (await scene.api(IMPERSONATE, variables, token=token))["clientImpersonate"]
    assert payload["userErrors"] == []
    return str(payload["token"])


async def token_id(session: AsyncSession, token: str) -> int:
    found = await session.scalar(
        select(ApiToken.id).where(ApiToken.token_hash == token_digest(token))
    )
    assert found is not None
    return found


async def block(scene: Scene) -> None:
    await scene.as_admin(BLOCK, {"id": scene.client_gid, "reason": "Spam"})


async def set_inactive(scene: Scene) -> None:
    await scene.as_admin(SET_STATUS, {"ids": [scene.client_gid], "status": "INACTIVE"})


async def reassign(scene: Scene) -> None:
    manager = gid("StaffUser", scene.other_manager.id)
    await scene.as_admin(UPDATE, {"id": scene.client_gid, "input": {"managerId": manager}})


async def delete(scene: Scene) -> None:
    await scene.as_admin(DELETE, {"ids": [scene.client_gid]})


async def revoke_issuing_token(scene: Scene) -> None:
    issuing = gid("ApiToken", await token_id(scene.session, scene.manager_token))
    data = await scene.api(TOKEN_REVOKE, {"id": issuing}, token=scene.manager_token)
    assert data["tokenRevoke"]["userErrors"] == []


async def let_issuing_token_expire(scene: Scene) -> None:
    scene.clock.advance(timedelta(minutes=10))


async def deactivate_issuer(scene: Scene) -> None:
    await scene.session.execute(
        update(StaffUser).where(StaffUser.id == scene.manager.id).values(is_active=False)
    )
    await scene.session.commit()


async def revoke_sessions(scene: Scene) -> None:
    await scene.as_admin(REVOKE_SESSIONS, {"clientId": scene.client_gid, "reason": "Phished"})


async def let_session_expire(scene: Scene) -> None:
    scene.clock.advance(timedelta(minutes=15))


# ground taken away -> (code, reason) of the 401
GROUNDS: dict[str, tuple[Callable[[Scene], Awaitable[None]], str, str | None]] = {
    "client blocked": (block, "SESSION_ENDED", "client_blocked"),
    "client set inactive": (set_inactive, "SESSION_ENDED", "client_inactive"),
    "client reassigned to another manager": (reassign, "SESSION_ENDED", "issuer_not_allowed"),
    "client deleted": (delete, "SESSION_ENDED", "gone"),
    "issuing staff token revoked": (revoke_issuing_token, "SESSION_ENDED", "token_revoked"),
    "issuing staff token expired": (let_issuing_token_expire, "SESSION_ENDED", "token_expired"),
    "issuer deactivated": (deactivate_issuer, "SESSION_ENDED", "issuer_deactivated"),
    "sessions revoked": (revoke_sessions, "SESSION_ENDED", "revoked"),
    "session expired": (let_session_expire, "TOKEN_EXPIRED", None),
}


@pytest.mark.parametrize(("end", "code", "reason"), GROUNDS.values(), ids=GROUNDS.keys())
async def test_a_cabinet_session_ends_with_its_ground(
    scene: Scene,
    http: httpx.AsyncClient,
    end: Callable[[Scene], Awaitable[None]],
    code: str,
    reason: str | None,
) -> None:
    # given a cabinet the client's manager opened
    token = await impersonate(scene, token=scene.manager_token)
    opened = await open_cabinet(http, token)
    assert opened.status_code == 200
    assert opened.json()["impersonatedBy"] == "max@clientdesk.test"
    # when one of its grounds goes away
    await end(scene)
    # then the same token is refused, saying why
    refused = await open_cabinet(http, token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == code
    assert refused.json()["error"].get("reason") == reason


async def test_a_block_that_has_ended_counts_as_none(scene: Scene, http: httpx.AsyncClient) -> None:
    token = await impersonate(scene, token=scene.admin)
    until = scene.clock() + timedelta(minutes=5)
    await scene.as_admin(
        BLOCK, {"id": scene.client_gid, "reason": "Cool-off", "until": until.isoformat()}
    )
    assert (await open_cabinet(http, token)).json()["error"]["reason"] == "client_blocked"
    scene.clock.advance(timedelta(minutes=5))
    assert (await open_cabinet(http, token)).status_code == 200


async def test_an_admins_forced_session_stays_open_over_the_lock_out_while_they_are_admin(
    scene: Scene, http: httpx.AsyncClient
) -> None:
    # given a blocked client, opened by an admin with force, and by the same admin without
    await set_inactive(scene)
    forced = await impersonate(scene, token=scene.admin, force=True)
    assert (await open_cabinet(http, forced)).status_code == 200
    # when the client is blocked as well, the forced session stays open
    await block(scene)
    assert (await open_cabinet(http, forced)).status_code == 200
    # but not once its issuer is an admin no longer
    admin_id = (
        await scene.session.execute(
            select(ApiToken.staff_id).where(ApiToken.token_hash == token_digest(scene.admin))
        )
    ).scalar_one()
    await scene.session.execute(
        update(StaffUser).where(StaffUser.id == admin_id).values(role=StaffRole.MANAGER)
    )
    await scene.session.commit()
    refused = await open_cabinet(http, forced)
    assert (refused.status_code, refused.json()["error"]["reason"]) == (401, "issuer_not_allowed")


async def test_revoking_ends_every_open_session_of_that_client_only(
    scene: Scene, http: httpx.AsyncClient, factory: Factory
) -> None:
    # given two sessions of the client (by its manager and an admin) and one of another client
    mine = [await impersonate(scene, token=t) for t in (scene.manager_token, scene.admin)]
    other = await factory.client(login="other")
    elsewhere = (
        await scene.api(
            IMPERSONATE, {"id": gid("Client", other.id), "reason": "x"}, token=scene.admin
        )
    )["clientImpersonate"]["token"]
    # when the manager revokes the client's sessions
    payload = (
        await scene.api(
            REVOKE_SESSIONS,
            {"clientId": scene.client_gid, "reason": "Laptop stolen"},
            token=scene.manager_token,
        )
    )["clientCabinetSessionsRevoke"]
    # then both of the client's are revoked, the other client's not
    assert payload == {"revokedCount": 2, "client": {"login": "acme"}, "userErrors": []}
    for token in mine:
        refused = await open_cabinet(http, token)
        assert (refused.status_code, refused.json()["error"]["reason"]) == (401, "revoked")
    assert (await open_cabinet(http, elsewhere)).status_code == 200
    # and the rows say by whom and why; the audit log lists them
    rows = (
        await scene.session.scalars(
            select(CabinetSession)
            .where(CabinetSession.client_id == scene.client.id)
            .order_by(CabinetSession.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    assert [(r.revoked_by_id, r.revoked_reason) for r in rows] == [
        (scene.manager.id, "Laptop stolen")
    ] * 2
    entries = (await scene.api(AUDIT, {"f": {"targetId": scene.client_gid}}, token=scene.admin))[
        "auditLog"
    ]["nodes"]
    assert [e["action"] for e in entries] == [
        "client.cabinet_sessions_revoke",
        "client.impersonate",
        "client.impersonate",
    ]
    assert entries[0]["after"] == {"session_ids": [r.id for r in rows]}
    assert entries[0]["reason"] == "Laptop stolen"
    assert entries[0]["actorEmail"] == "max@clientdesk.test"
    assert sorted(e["after"]["session_id"] for e in entries[1:]) == [r.id for r in rows]
    # and revoking again finds nothing open
    again = (await scene.api(REVOKE_SESSIONS, {"clientId": scene.client_gid}, token=scene.admin))[
        "clientCabinetSessionsRevoke"
    ]
    assert again["revokedCount"] == 0


async def test_revoking_follows_the_rules_of_impersonation(scene: Scene, factory: Factory) -> None:
    # another manager's client: FORBIDDEN, like clientImpersonate
    other_token = await factory.token(scene.other_manager)
    errors = await scene.api.errors(
        REVOKE_SESSIONS, {"clientId": scene.client_gid}, token=other_token
    )
    assert [e["extensions"].get("reason") for e in errors] == ["NOT_YOUR_CLIENT"]
    assert errors[0]["extensions"]["fields"] == [["clientId"]]
    # without clients:impersonate: FORBIDDEN
    lacking = await factory.token(scene.manager, scopes={Scope.CLIENTS_READ, Scope.CLIENTS_WRITE})
    errors = await scene.api.errors(REVOKE_SESSIONS, {"clientId": scene.client_gid}, token=lacking)
    assert error_codes(errors) == ["FORBIDDEN"]
    # an unknown client, a reason too long
    nowhere = {"clientId": gid("Client", 10**9)}
    unknown = (await scene.api(REVOKE_SESSIONS, nowhere, token=scene.admin))[
        "clientCabinetSessionsRevoke"
    ]
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [(["clientId"], "NOT_FOUND")]
    long = (
        await scene.api(
            REVOKE_SESSIONS, {"clientId": scene.client_gid, "reason": "x" * 501}, token=scene.admin
        )
    )["clientCabinetSessionsRevoke"]
    assert [(e["field"], e["code"]) for e in long["userErrors"]] == [(["reason"], "TOO_LONG")]
