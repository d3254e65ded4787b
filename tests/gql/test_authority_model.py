"""A hypothesis state machine over who may do what: staff users (admins, managers, some
deactivated), tokens (minted by tokens with subsets of their scopes and expiries, revoked,
expired by the clock) and clients (managers, links, reassignments). Every rule calls the API
over HTTP and checks its answer — done, FORBIDDEN, UNAUTHENTICATED or a userError — against a
small model of the rules in README "Who may do what" and "Staff and tokens"; after every step
the database's tokens and clients are what the model says."""

import base64
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientdesk.settings import Settings
from db.enums import Scope, StaffRole, TokenKind
from db.models import ApiToken, Client, StaffUser
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from services.auth import issue_token
from tests.conftest import FakeClock
from tests.services.test_ledger_state_machine import LoopThread

RUNS = itertools.count(1)
# What the model says an answer is: "ok", "UNAUTHENTICATED", "FORBIDDEN" or a userError code.
Outcome = str


@dataclass
class Token:
    secret: str
    id: int
    staff_id: int
    scopes: frozenset[Scope]
    expires_at: datetime | None
    parent: "Token | None" = None
    revoked: bool = False


@dataclass
class Staff:
    id: int
    role: StaffRole
    active: bool = True


@dataclass
class Customer:
    id: int
    manager_id: int | None
    parent_id: int | None = None


@dataclass
class Model:
    """The state the rules are judged by."""

    staff: dict[int, Staff] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    clients: dict[int, Customer] = field(default_factory=dict)

    def valid(self, token: Token, now: datetime) -> bool:
        """A token works while it and every token above it are unrevoked and unexpired, and
        its owner is active."""
        current: Token | None = token
        while current is not None:
            if current.revoked or (current.expires_at is not None and current.expires_at <= now):
                return False
            current = current.parent
        return self.staff[token.staff_id].active

    def may_change(self, token: Token, client: Customer) -> bool:
        """Admins every client; managers theirs and their clients' sub-accounts."""
        if self.staff[token.staff_id].role is StaffRole.ADMIN:
            return True
        parent = self.clients.get(client.parent_id) if client.parent_id else None
        return client.manager_id == token.staff_id or (
            parent is not None and parent.manager_id == token.staff_id
        )

    def descends(self, token: Token, ancestor: Token) -> bool:
        current: Token | None = token
        while current is not None:
            if current is ancestor:
                return True
            current = current.parent
        return False

    def gate(self, token: Token, scope: Scope, now: datetime) -> Outcome | None:
        """The refusal before any rule runs: no valid token, or a missing scope."""
        if not self.valid(token, now):
            return "UNAUTHENTICATED"
        if scope not in token.scopes:
            return "FORBIDDEN"
        return None


def by_id(row: Staff | Customer) -> int:
    return row.id


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def outcome(body: dict[str, Any], operation: str) -> Outcome:
    """What the API answered, in the model's terms."""
    if body.get("errors"):
        codes = {error["extensions"]["code"] for error in body["errors"]}
        assert len(codes) == 1, body
        return codes.pop()  # type: ignore[no-any-return]
    errors = body["data"][operation].get("userErrors") or []
    return errors[0]["code"] if errors else "ok"  # type: ignore[no-any-return]


MINT = """
mutation($input: TokenCreateInput!) {
  tokenCreate(input: $input) { token apiToken { id expiresAt } userErrors { code } }
}
"""
REVOKE = "mutation($id: ID!) { tokenRevoke(id: $id) { userErrors { code } } }"
UPDATE = """
mutation($id: ID!, $input: ClientUpdateInput!) {
  clientUpdate(id: $id, input: $input) { userErrors { code } }
}
"""
LINK = """
mutation($p: ID!, $c: ID!) { clientLink(parentId: $p, childId: $c) { userErrors { code } } }
"""
OPEN = """
mutation($input: ClientCreateInput!) { clientCreate(input: $input) { userErrors { code } } }
"""
UNLINK = "mutation($c: ID!) { clientUnlink(childId: $c) { userErrors { code } } }"
PAY = """
mutation($id: ID!) {
  creditAdd(input: {clientId: $id, amount: "1.00", paymentMethod: CASH}) { userErrors { code } }
}
"""


@pytest.fixture
def world(scratch_url: str, settings: Settings) -> Iterator[tuple[LoopThread, Any, Any, Any]]:
    runner = LoopThread()
    clock = FakeClock(datetime.fromisoformat("2026-06-01T00:00:00+00:00"))
    # every request looks its token up: the model deactivates staff behind the API's back
    app_settings = settings.model_copy(update={"token_cache_seconds": 0})

    async def start() -> tuple[Any, async_sessionmaker[AsyncSession], httpx.AsyncClient]:
        engine = create_engine(scratch_url)
        sessions = create_sessionmaker(engine)
        app = create_app(app_settings, engine=engine, sessionmaker=sessions, clock=clock)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://clientdesk.test"
        )
        return engine, sessions, http

    engine, sessions, http = runner.run(start())
    yield runner, sessions, http, clock
    runner.run(http.aclose())
    runner.run(engine.dispose())
    runner.close()


def test_authority_model(world: tuple[LoopThread, Any, Any, FakeClock]) -> None:
    runner, sessions, http, clock = world

    class Authority(RuleBasedStateMachine):
        @initialize()
        def staff_and_clients(self) -> None:
            self.model = Model()
            run = next(RUNS)

            async def seed() -> None:
                async with sessions() as session:
                    people = [
                        StaffUser(email=f"{name}{run}@example.com", name=name, role=role)
                        for name, role in (
                            ("admin", StaffRole.ADMIN),
                            ("anna", StaffRole.MANAGER),
                            ("bert", StaffRole.MANAGER),
                        )
                    ]
                    session.add_all(people)
                    await session.flush()
                    # each has a sign-in token with every scope of the role, and an
                    # integration token with a few, expiring in some hours
                    narrow = (
                        {Scope.CREDITS_WRITE},
                        {Scope.CLIENTS_WRITE, Scope.TOKENS_WRITE},
                        {Scope.CLIENTS_WRITE, Scope.CREDITS_WRITE},
                    )
                    for person, scopes, hours in zip(people, narrow, (12, 3, 30), strict=True):
                        self.model.staff[person.id] = Staff(person.id, person.role)
                        for kind, granted, ends in (
                            (TokenKind.SESSION, None, None),
                            (TokenKind.API, frozenset(scopes), clock() + timedelta(hours=hours)),
                        ):
                            issued = await issue_token(
                                session,
                                staff=person,
                                kind=kind,
                                name="seeded",
                                now=clock(),
                                scopes=granted,
                                expires_at=ends,
                            )
                            self.model.tokens.append(
                                Token(issued.token, issued.token_id, person.id, issued.scopes, ends)
                            )
                    owners = [people[1].id, people[1].id, people[2].id, people[2].id, None]
                    for n, owner in enumerate(owners):
                        client = Client(
                            login=f"c{run}x{n}",
                            password_hash="x",
                            email="c@example.com",
                            currency="EUR",
                            balance=Decimal(0),
                            manager_id=owner,
                            created_at=clock(),
                            updated_at=clock(),
                        )
                        session.add(client)
                        await session.flush()
                        self.model.clients[client.id] = Customer(client.id, owner)
                    await session.commit()

            runner.run(seed())

        def post(self, token: Token, query: str, variables: dict[str, Any]) -> dict[str, Any]:
            async def go() -> dict[str, Any]:
                response = await http.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {token.secret}"},
                )
                assert response.status_code == 200, response.text
                return response.json()  # type: ignore[no-any-return]

            return runner.run(go())

        def some_token(self, data: st.DataObject) -> Token:
            """Any token; the newest first (hypothesis favours the first of a list)."""
            return data.draw(st.sampled_from(self.model.tokens[::-1]))

        def ask(self, token: Token, query: str, variables: dict[str, Any], name: str) -> Outcome:
            return outcome(self.post(token, query, variables), name)

        # --- tokens -------------------------------------------------------------------

        @rule(
            data=st.data(),
            extra=st.sampled_from([None, *Scope]),
            hours=st.sampled_from([48, None, 2, 20]),
        )
        def mint(self, data: st.DataObject, extra: Scope | None, hours: int | None) -> None:
            token = self.some_token(data)
            # some of the token's scopes, and now and then one more (maybe one it lacks)
            scopes = data.draw(st.sets(st.sampled_from(sorted(token.scopes)), min_size=1))
            scopes |= {extra} if extra else set()
            now = clock()
            expires = now + timedelta(hours=hours) if hours is not None else None
            expected = self.model.gate(token, Scope.TOKENS_WRITE, now)
            if expected is None:
                if not scopes <= token.scopes:
                    expected = "INVALID_SCOPE"
                elif expires and token.expires_at and expires > token.expires_at:
                    expected = "OUT_OF_RANGE"
                else:
                    expected = "ok"
            variables: dict[str, Any] = {
                "input": {"name": "minted", "scopes": [scope.name for scope in scopes]}
            }
            if expires is not None:
                variables["input"]["expiresAt"] = expires.isoformat()
            body = self.post(token, MINT, variables)
            assert outcome(body, "tokenCreate") == expected, (expected, body)
            if expected == "ok":
                created = body["data"]["tokenCreate"]
                ends = expires or token.expires_at
                shown = created["apiToken"]["expiresAt"]
                assert (datetime.fromisoformat(shown) if shown else None) == ends
                self.model.tokens.append(
                    Token(
                        created["token"],
                        int(base64.b64decode(created["apiToken"]["id"]).split(b":")[1]),
                        token.staff_id,
                        frozenset(scopes),
                        ends,
                        parent=token,
                    )
                )

        @rule(data=st.data())
        def revoke(self, data: st.DataObject) -> None:
            token = self.some_token(data)
            target = self.some_token(data)
            now = clock()
            admin = Scope.STAFF_ADMIN in token.scopes
            if not self.model.valid(token, now):
                expected = "UNAUTHENTICATED"
            elif target.staff_id != token.staff_id and not admin:
                expected = "NOT_FOUND"
            elif not (
                admin or Scope.TOKENS_WRITE in token.scopes or self.model.descends(target, token)
            ):
                expected = "FORBIDDEN"
            else:
                expected = "ok"
            got = self.ask(token, REVOKE, {"id": gid("ApiToken", target.id)}, "tokenRevoke")
            assert got == expected, (expected, got)
            if expected == "ok":
                for each in self.model.tokens:
                    if self.model.descends(each, target):
                        each.revoked = True

        @rule(data=st.data())
        def who_am_i(self, data: st.DataObject) -> None:
            token = self.some_token(data)
            body = self.post(token, "{ viewer { name } }", {})
            expected = "ok" if self.model.valid(token, clock()) else "UNAUTHENTICATED"
            assert ("ok" if body.get("data") else outcome(body, "")) == expected

        @rule(minutes=st.sampled_from([30, 90, 10 * 60]))
        def time_passes(self, minutes: int) -> None:
            clock.advance(timedelta(minutes=minutes))

        @precondition(
            lambda self: any(
                s.active and s.role is StaffRole.MANAGER for s in self.model.staff.values()
            )
        )
        @rule(data=st.data())
        def deactivate_a_manager(self, data: st.DataObject) -> None:
            managers = [
                s for s in self.model.staff.values() if s.active and s.role is StaffRole.MANAGER
            ]
            person = data.draw(st.sampled_from(managers))

            async def go() -> None:
                async with sessions() as session:
                    await session.execute(
                        update(StaffUser).where(StaffUser.id == person.id).values(is_active=False)
                    )
                    await session.commit()

            runner.run(go())
            person.active = False

        # --- clients ------------------------------------------------------------------

        def pick(self, data: st.DataObject) -> tuple[Token, Customer]:
            token = self.some_token(data)
            client = data.draw(st.sampled_from(sorted(self.model.clients.values(), key=by_id)))
            return token, client

        def change(self, token: Token, client: Customer, scope: Scope) -> Outcome | None:
            refused = self.model.gate(token, scope, clock())
            if refused is None and not self.model.may_change(token, client):
                refused = "FORBIDDEN"
            return refused

        @rule(data=st.data())
        def rename(self, data: st.DataObject) -> None:
            token, client = self.pick(data)
            expected = self.change(token, client, Scope.CLIENTS_WRITE) or "ok"
            variables = {"id": gid("Client", client.id), "input": {"name": "renamed"}}
            assert self.ask(token, UPDATE, variables, "clientUpdate") == expected

        @rule(data=st.data(), percent=st.sampled_from(["5.00", "-12.50"]))
        def adjust_prices_through_update(self, data: st.DataObject, percent: str) -> None:
            token, client = self.pick(data)
            expected = self.model.gate(token, Scope.CLIENTS_WRITE, clock())
            if expected is None and Scope.PRICING_WRITE not in token.scopes:
                expected = "FORBIDDEN"
            expected = expected or self.change(token, client, Scope.CLIENTS_WRITE) or "ok"
            variables = {
                "id": gid("Client", client.id),
                "input": {"priceAdjustmentPercent": percent},
            }
            assert self.ask(token, UPDATE, variables, "clientUpdate") == expected

        @rule(data=st.data())
        def pay(self, data: st.DataObject) -> None:
            token, client = self.pick(data)
            expected = self.change(token, client, Scope.CREDITS_WRITE) or "ok"
            assert self.ask(token, PAY, {"id": gid("Client", client.id)}, "creditAdd") == expected

        @rule(data=st.data())
        def reassign(self, data: st.DataObject) -> None:
            token, client = self.pick(data)
            manager = data.draw(st.sampled_from(sorted(self.model.staff.values(), key=by_id)))
            expected = self.model.gate(token, Scope.CLIENTS_WRITE, clock())
            if expected is None and Scope.STAFF_ADMIN not in token.scopes:
                expected = "FORBIDDEN"  # assigning clients is staff administration
            if expected is None:
                expected = self.change(token, client, Scope.CLIENTS_WRITE)
            if expected is None:
                expected = "ok" if manager.active else "NOT_FOUND"
            variables = {
                "id": gid("Client", client.id),
                "input": {"managerId": gid("StaffUser", manager.id)},
            }
            assert self.ask(token, UPDATE, variables, "clientUpdate") == expected
            if expected == "ok":
                client.manager_id = manager.id

        @precondition(lambda self: len(self.model.clients) < 9)
        @rule(data=st.data(), assign=st.booleans())
        def open_client(self, data: st.DataObject, assign: bool) -> None:
            token = self.some_token(data)
            manager = data.draw(st.sampled_from(sorted(self.model.staff.values(), key=by_id)))
            expected = self.model.gate(token, Scope.CLIENTS_WRITE, clock())
            if expected is None and assign and Scope.STAFF_ADMIN not in token.scopes:
                expected = "FORBIDDEN"  # assigning clients is staff administration
            if expected is None and assign and not manager.active:
                expected = "NOT_FOUND"
            login = f"new{next(RUNS)}"
            values: dict[str, Any] = {
                "login": login,
                "password": "correct horse battery staple",
                "currency": "EUR",
                "email": "n@example.com",
            }
            if assign:
                values["managerId"] = gid("StaffUser", manager.id)
            got = self.ask(token, OPEN, {"input": values}, "clientCreate")
            assert got == (expected or "ok")
            if expected is None:

                async def created() -> int:
                    async with sessions() as session:
                        found = await session.scalar(select(Client.id).where(Client.login == login))
                        assert found is not None
                        return found

                # a manager's new client is theirs; an admin's has whom they name, or no one
                owner = self.model.staff[token.staff_id]
                mine = owner.id if owner.role is StaffRole.MANAGER else None
                pk = runner.run(created())
                self.model.clients[pk] = Customer(pk, manager.id if assign else mine)

        @rule(data=st.data())
        def link(self, data: st.DataObject) -> None:
            token, parent = self.pick(data)
            clients = self.model.clients
            others = [c for c in sorted(clients.values(), key=by_id) if c is not parent]
            # now and then the client itself (hypothesis favours 0: that is the other clients)
            itself = data.draw(st.integers(0, 9)) == 9
            child = parent if itself else data.draw(st.sampled_from(others))
            clients = self.model.clients
            expected = self.model.gate(token, Scope.CLIENTS_WRITE, clock())
            if expected is None and parent is child:
                expected = "SELF_LINK"
            if expected is None and not (
                self.model.may_change(token, parent) and self.model.may_change(token, child)
            ):
                expected = "FORBIDDEN"
            if expected is None:
                if parent.parent_id == child.id:
                    expected = "CYCLE"
                elif child.parent_id is not None:
                    expected = "ALREADY_LINKED"
                elif parent.parent_id is not None:
                    expected = "PARENT_IS_SUB_ACCOUNT"
                elif any(c.parent_id == child.id for c in clients.values()):
                    expected = "CHILD_HAS_SUB_ACCOUNTS"
                else:
                    expected = "ok"
            variables = {"p": gid("Client", parent.id), "c": gid("Client", child.id)}
            assert self.ask(token, LINK, variables, "clientLink") == expected
            if expected == "ok":
                child.parent_id = parent.id

        @rule(data=st.data())
        def unlink(self, data: st.DataObject) -> None:
            token, child = self.pick(data)
            expected = self.change(token, child, Scope.CLIENTS_WRITE)
            if expected is None:
                expected = "ok" if child.parent_id is not None else "NOT_LINKED"
            got = self.ask(token, UNLINK, {"c": gid("Client", child.id)}, "clientUnlink")
            assert got == expected
            if expected == "ok":
                child.parent_id = None  # and its manager stays its own

        # --- what the database holds ----------------------------------------------------

        @invariant()
        def the_database_agrees(self) -> None:
            if not hasattr(self, "model"):
                return

            async def read() -> tuple[dict[int, Any], dict[int, Any]]:
                async with sessions() as session:
                    tokens = await session.execute(
                        select(ApiToken.id, ApiToken.revoked_at, ApiToken.parent_id).where(
                            ApiToken.id.in_([t.id for t in self.model.tokens])
                        )
                    )
                    clients = await session.execute(
                        select(Client.id, Client.manager_id, Client.parent_id).where(
                            Client.id.in_(list(self.model.clients))
                        )
                    )
                    return (
                        {row.id: row for row in tokens},
                        {row.id: row for row in clients},
                    )

            tokens, clients = runner.run(read())
            for token in self.model.tokens:
                stored = tokens[token.id]
                assert (stored.revoked_at is not None) == token.revoked
                assert stored.parent_id == (token.parent.id if token.parent else None)
            for client in self.model.clients.values():
                stored = clients[client.id]
                assert (stored.manager_id, stored.parent_id) == (
                    client.manager_id,
                    client.parent_id,
                )

    Authority.TestCase.settings = hypothesis_settings(
        max_examples=30,
        stateful_step_count=30,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Authority.TestCase().runTest()
