"""The compiled path answers exactly what graphql-core's executor answers, byte for byte, and
leaves to the executor everything it does not know or that would end in an error."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from clientdesk.demo import DEMO_ADMIN_EMAIL, seed_demo_data
from clientdesk.settings import Settings
from db.enums import TokenKind
from db.models import Client, StaffUser
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from gql.compiled import CompiledOperations
from gql.limits import Limits
from services.auth import issue_token
from tests.conftest import FakeClock
from tests.gql.conftest import RICH_LOGIN, SEEDED_AT, Listing

LIST = """
query List($filter: ClientFilter, $search: String, $orderBy: [ClientOrder!],
           $first: Int, $after: String, $last: Int, $before: String) {
  clients(filter: $filter, search: $search, orderBy: $orderBy,
          first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { id login name email status createdAt balance { amount currency } manager { name } }
  }
}
"""
CLIENT_FIELDS = """
  __typename id login name email phone country currency language effectiveLanguage status
  blocked canLogin validTill moderation avatarUrl priceAdjustmentPercent lastActivityAt
  chatsCount supportRequestsCount createdAt updatedAt
  balance { __typename amount currency } creditLimit { amount currency }
  block { __typename reason blockedAt blockedUntil
          blockedBy { __typename id email name role createdAt } }
  manager { __typename id email name role createdAt }
"""
EVERYTHING = f"""
query Everything($first: Int, $filter: ClientFilter, $orderBy: [ClientOrder!], $after: String) {{
  __typename
  clients(first: $first, filter: $filter, orderBy: $orderBy, after: $after) {{
    __typename totalCount
    pageInfo {{ __typename hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{
      __typename cursor
      node {{ {CLIENT_FIELDS} parent {{ {CLIENT_FIELDS} parent {{ id login }} }} }}
    }}
    nodes {{ login parent {{ login manager {{ name }} }} }}
  }}
}}
"""
FRAGMENTS = """
query Fragments($first: Int) {
  mine: clients(first: $first, filter: {ownership: [OWN]}) {
    ...Page
    nodes { login ... on Client { name } }
  }
  inactive: clients(first: 3, filter: {statuses: [INACTIVE]}, orderBy: [{field: LOGIN}]) {
    count: totalCount
    nodes { ...Row ...Row  who: login ... on Node { id } }
  }
}
fragment Page on ClientConnection {
  totalCount
  pageInfo { end: endCursor }
  nodes { ...Row manager { ...Person } }
}
fragment Row on Client { login login2: login status balance { amount } }
fragment Person on StaffUser { name id }
"""


@dataclass
class Paths:
    """Two apps over the listing database: one compiles, one always runs the executor."""

    compiled: httpx.AsyncClient
    executor: httpx.AsyncClient
    operations: CompiledOperations
    token: str

    async def both(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> tuple[httpx.Response, httpx.Response]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        body = {"query": query, "variables": variables or {}}
        return (
            await self.compiled.post("/graphql", json=body, headers=headers),
            await self.executor.post("/graphql", json=body, headers=headers),
        )

    async def same(
        self, query: str, variables: dict[str, Any] | None = None, *, compiled: bool = True
    ) -> dict[str, Any]:
        """Both answers, which must be identical; and whether the compiled path gave its own."""
        answered = self.operations.answered
        fast, slow = await self.both(query, variables)
        if fast.content != slow.content:
            at = next(
                (
                    i
                    for i, (a, b) in enumerate(zip(fast.content, slow.content, strict=False))
                    if a != b
                ),
                min(len(fast.content), len(slow.content)),
            )
            raise AssertionError(
                f"compiled {fast.content[at - 200 : at + 200]!r}\n"
                f"executor {slow.content[at - 200 : at + 200]!r}"
            )
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
        assert (self.operations.answered > answered) == compiled
        return fast.json()  # type: ignore[no-any-return]


@asynccontextmanager
async def both_paths(engine: AsyncEngine, token: str) -> AsyncIterator[Paths]:
    clients = []
    apps = []
    for compiled in (True, False):
        settings = Settings(
            database_url=str(engine.url),
            log_format="console",
            rate_limit_points_per_minute=0,
            compiled_operations=compiled,
        )
        app = create_app(settings, engine=engine, clock=FakeClock(SEEDED_AT))
        apps.append(app)
        transport = httpx.ASGITransport(app=app)
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://compiled.test"))
    yield Paths(clients[0], clients[1], apps[0].state.compiled, token)
    for client in clients:
        await client.aclose()


@pytest.fixture
async def paths(listing: Listing) -> AsyncIterator[Paths]:
    async with both_paths(listing.engine, listing.manager_token) as found:
        yield found


@pytest.fixture
async def family(scratch_url: str) -> AsyncIterator[Paths]:
    """Both paths over 80 demo clients, the first of them with a dozen sub-accounts."""
    engine = create_engine(scratch_url)
    await seed_demo_data(engine, clients=80, seed=5, now=SEEDED_AT)
    async with create_sessionmaker(engine)() as session:
        admin = (
            await session.execute(select(StaffUser).where(StaffUser.email == DEMO_ADMIN_EMAIL))
        ).scalar_one()
        token = await issue_token(
            session, staff=admin, kind=TokenKind.API, name="tests", now=SEEDED_AT
        )
        first = await session.scalar(select(func.min(Client.id)))
        await session.execute(
            update(Client)
            .where(Client.id.in_(select(Client.id).where(Client.id > first).limit(12)))
            .values(parent_id=first)
        )
        await session.commit()
    async with both_paths(engine, token.token) as found:
        yield found
    await engine.dispose()


async def test_the_list_page_is_compiled_and_identical(paths: Paths) -> None:
    body = await paths.same(LIST, {"first": 50, "filter": {"statuses": ["ACTIVE"]}})
    nodes = body["data"]["clients"]["nodes"]
    assert len(nodes) == 50
    assert any(node["manager"] for node in nodes)
    assert any(node["manager"] is None for node in nodes)
    assert body["extensions"]["cost"]["nodes"] == 50


async def test_every_compiled_field_including_joins_and_blocks(paths: Paths) -> None:
    body = await paths.same(EVERYTHING, {"first": 100})
    nodes = [edge["node"] for edge in body["data"]["clients"]["edges"]]
    assert any(node["parent"] for node in nodes)
    assert any(node["block"] and node["block"]["blockedBy"] for node in nodes)
    assert any(node["block"] is None for node in nodes)
    assert {node["effectiveLanguage"] for node in nodes} > {"en"}
    for sort in ("LOGIN", "NAME", "BALANCE", "LAST_ACTIVITY_AT", "VALID_TILL"):
        for direction in ("ASC", "DESC"):
            order = [{"field": sort, "direction": direction}]
            page = await paths.same(EVERYTHING, {"first": 7, "orderBy": order})
            after = page["data"]["clients"]["pageInfo"]["endCursor"]
            await paths.same(EVERYTHING, {"first": 7, "orderBy": order, "after": after})


async def test_fragments_aliases_and_two_lists_in_one_operation(paths: Paths) -> None:
    body = await paths.same(FRAGMENTS, {"first": 4})
    inactive = body["data"]["inactive"]["nodes"]
    assert [set(node) for node in inactive] == [
        {"login", "login2", "status", "balance", "who", "id"}
    ] * len(inactive)
    assert list(body["data"]["mine"]["nodes"][0]) == [
        "login",
        "login2",
        "status",
        "balance",
        "manager",
        "name",
    ]


FILTERS: list[dict[str, Any] | None] = [
    None,
    {"statuses": ["INACTIVE"]},
    {"ownership": ["OWN", "UNASSIGNED"], "statuses": ["ACTIVE"]},
    {"blocked": True},
    {"countries": ["de", "JP"], "hasParent": False},
    {"connectionTypes": ["SMPP"], "connectionStatus": "ONLINE"},
    {"balanceBelow": "0"},
    {"login": "acme"},
]
ORDERS: list[list[dict[str, str]] | None] = [
    None,
    [{"field": "LOGIN"}],
    [{"field": "NAME", "direction": "DESC"}],
    [{"field": "COUNTRY"}, {"field": "BALANCE", "direction": "DESC"}],
    [{"field": "LAST_ACTIVITY_AT"}],
    [{"field": "STATUS", "direction": "DESC"}, {"field": "VALID_TILL"}],
]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    filter=st.sampled_from(FILTERS),
    search=st.sampled_from([None, "", "a", "acme", "ben", "49"]),
    order_by=st.sampled_from(ORDERS),
    size=st.integers(min_value=1, max_value=30),
    backwards=st.booleans(),
    step=st.integers(min_value=0, max_value=3),
)
async def test_any_page_of_any_list_is_identical(
    paths: Paths,
    filter: dict[str, Any] | None,
    search: str | None,
    order_by: list[dict[str, str]] | None,
    size: int,
    backwards: bool,
    step: int,
) -> None:
    variables: dict[str, Any] = {"filter": filter, "search": search, "orderBy": order_by}
    variables["last" if backwards else "first"] = size
    for _ in range(step + 1):  # walk a few pages, each compared
        body = await paths.same(LIST, variables)
        info = body["data"]["clients"]["pageInfo"]
        if not (info["hasPreviousPage"] if backwards else info["hasNextPage"]):
            break
        variables["before" if backwards else "after"] = (
            info["startCursor"] if backwards else info["endCursor"]
        )


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        # directives decide fields at run time: not compiled
        ("query($x: Boolean!) { clients { nodes { login @include(if: $x) } } }", {"x": True}),
        # a to-many field the compiler does not know
        # a field with a resolver of its own below a compiled one
        (
            "{ clients(first: 2) { nodes { packagePrices { package { prices { amount } } } } } }",
            None,
        ),
        # other root fields
        ("{ auditLog(first: 1) { totalCount } clients(first: 1) { nodes { login } } }", None),
        ("{ __schema { queryType { name } } }", None),
    ],
)
async def test_what_is_not_compiled_runs_on_the_executor(
    paths: Paths, query: str, variables: dict[str, Any] | None
) -> None:
    body = await paths.same(query, variables, compiled=False)
    assert "errors" not in body


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"first": 0}, "BAD_USER_INPUT"),
        ({"first": 5, "after": "not-a-cursor"}, "BAD_USER_INPUT"),
        ({"filter": {"countries": ["XX"]}}, "BAD_USER_INPUT"),
        ({"first": "ten"}, "BAD_USER_INPUT"),  # a variable of the wrong type
        ({"filter": {"statuses": ["GONE"]}}, "BAD_USER_INPUT"),
    ],
)
async def test_errors_come_from_the_executor(
    paths: Paths, variables: dict[str, Any], code: str
) -> None:
    body = await paths.same(LIST, variables, compiled=False)
    assert [error["extensions"]["code"] for error in body["errors"]] == [code]


async def test_permissions_are_the_fields_own(paths: Paths, listing: Listing) -> None:
    # given no token, or a token without clients:read
    anonymous = await paths.compiled.post("/graphql", json={"query": LIST})
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await paths.same("{ viewer { email } }", None)
    assert body["data"]["viewer"]["email"]
    answered = paths.operations.answered
    fast, slow = await paths.both(LIST, {"first": 1}, token="cd_unknown")
    assert fast.content == slow.content
    assert paths.operations.answered == answered


def selects(listing: Listing) -> list[str]:
    return [sql for sql, _ in listing.statements if sql.lstrip().upper().startswith("SELECT")]


async def test_a_page_is_one_statement(paths: Paths, listing: Listing) -> None:
    headers = {"Authorization": f"Bearer {paths.token}"}
    no_total = LIST.replace("totalCount", "")
    for first in (1, 100):
        # given the list page asked once (compiled, statements kept for these variables)
        variables = {"first": first, "filter": {"statuses": ["ACTIVE"]}}
        await paths.same(no_total, variables)
        listing.statements.clear()
        # when it is asked again
        answer = await paths.compiled.post(
            "/graphql", json={"query": no_total, "variables": variables}, headers=headers
        )
        # then the compiled path ran the page, nothing else (the token is trusted for a second)
        assert len(answer.json()["data"]["clients"]["nodes"]) == first
        [page] = selects(listing)
        assert "LEFT OUTER JOIN staff_users" in page
    # and the total is one more: a sum of tallies
    listing.statements.clear()
    await paths.compiled.post(
        "/graphql",
        json={"query": LIST, "variables": {"filter": {"statuses": ["ACTIVE"]}}},
        headers=headers,
    )
    assert len(selects(listing)) == 2
    assert "client_tallies" in selects(listing)[1]


def test_a_field_with_a_permission_of_its_own_is_not_compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a permission class on a field inside the list (none has one today)
    from strawberry.permission import PermissionExtension

    from gql.permissions import AdminsOnly
    from gql.schema import schema

    client_type = schema.schema_converter.type_map["Client"].definition
    email = next(field for field in client_type.fields if field.python_name == "email")
    monkeypatch.setattr(email, "extensions", [PermissionExtension([AdminsOnly()])])
    operations = CompiledOperations(schema, Limits(), Settings(log_format="console"))
    # then a query that selects it is left to the executor, which applies it
    assert operations.plan("{ clients { nodes { login email } } }", None) is None
    assert operations.plan("{ clients { nodes { login } } }", None) is not None


CARD_ENTRY = """
  __typename id kind amount { amount currency } balanceAfter { __typename amount currency }
  paymentMethod paymentReference comment validTillSet createdAt
  createdBy { __typename id name email role createdAt }
"""
CARD = f"""
query Card($id: ID, $login: String, $entries: Int, $after: String, $last: Int, $before: String,
           $subs: Int, $subsAfter: String, $orderBy: [ClientOrder!]) {{
  client(id: $id, login: $login) {{
    {CLIENT_FIELDS}
    parent {{ id login name }}
    creditEntries(first: $entries, after: $after, last: $last, before: $before) {{
      __typename totalCount
      pageInfo {{ __typename hasNextPage hasPreviousPage startCursor endCursor }}
      edges {{ __typename cursor node {{ {CARD_ENTRY} }} }}
      nodes {{ id kind }}
    }}
    subAccounts(first: $subs, after: $subsAfter, orderBy: $orderBy) {{
      totalCount
      pageInfo {{ hasNextPage hasPreviousPage endCursor }}
      nodes {{ id login status balance {{ amount currency }} parent {{ login }}
               creditEntries(first: 2) {{ totalCount nodes {{ id amount {{ amount }} }} }} }}
    }}
  }}
}}
"""
OWNERS = """
query Owners($after: String) {
  clients(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id login parent { id }
            creditEntries(first: 1) { totalCount } subAccounts(first: 1) { totalCount } }
  }
}
"""


async def owners(paths: Paths) -> list[dict[str, Any]]:
    """Every client with how many ledger entries and sub-accounts it has."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await paths.same(OWNERS, {"after": after}))["data"]["clients"]
        found += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_the_client_card_is_compiled_and_identical(paths: Paths) -> None:
    # given clients with the most ledger entries, the most sub-accounts, none of either, and
    # a sub-account
    clients = await owners(paths)
    by_entries = max(clients, key=lambda c: c["creditEntries"]["totalCount"])
    by_subs = max(clients, key=lambda c: c["subAccounts"]["totalCount"])
    bare = next(
        c
        for c in clients
        if c["creditEntries"]["totalCount"] == 0 and c["subAccounts"]["totalCount"] == 0
    )
    child = next(c for c in clients if c["parent"])
    assert by_entries["creditEntries"]["totalCount"] > 3
    assert by_subs["subAccounts"]["totalCount"] >= 1
    for client in (by_entries, by_subs, bare, child):
        # then the card is the executor's, byte for byte, by ID and by login
        body = await paths.same(CARD, {"id": client["id"]})
        card = body["data"]["client"]
        assert card["login"] == client["login"]
        entries = card["creditEntries"]
        assert entries["totalCount"] == client["creditEntries"]["totalCount"]
        assert len(entries["edges"]) == min(10, entries["totalCount"])
        assert entries["pageInfo"]["hasNextPage"] == (entries["totalCount"] > 10)
        assert card["subAccounts"]["totalCount"] == client["subAccounts"]["totalCount"]
        login = f"  {client['login'].upper()} "
        assert (await paths.same(CARD, {"login": login}))["data"] == body["data"]


async def test_the_ledger_a_page_at_a_time_both_ways(paths: Paths) -> None:
    clients = await owners(paths)
    by_entries = max(clients, key=lambda c: c["creditEntries"]["totalCount"])
    # forwards through the ledger, two entries a page, then backwards from the end
    variables: dict[str, Any] = {"id": by_entries["id"], "entries": 2}
    seen = []
    while True:
        entries = (await paths.same(CARD, variables))["data"]["client"]["creditEntries"]
        seen += [node["id"] for node in entries["nodes"]]
        if not entries["pageInfo"]["hasNextPage"]:
            break
        variables["after"] = entries["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == by_entries["creditEntries"]["totalCount"]
    variables = {"id": by_entries["id"], "last": 3}
    backwards: list[str] = []
    while True:
        entries = (await paths.same(CARD, variables))["data"]["client"]["creditEntries"]
        backwards = [node["id"] for node in entries["nodes"]] + backwards
        if not entries["pageInfo"]["hasPreviousPage"]:
            break
        variables["before"] = entries["pageInfo"]["startCursor"]
    assert backwards == seen
    # between two cursors: the checks in the other direction are asked of the database
    middle = {"id": by_entries["id"], "after": variables["before"], "before": seen and None}
    await paths.same(CARD, middle)


@pytest.mark.parametrize(
    "order",
    [
        None,
        [{"field": "LOGIN"}],
        [{"field": "BALANCE", "direction": "DESC"}],
        [{"field": "COUNTRY"}, {"field": "NAME", "direction": "DESC"}],
        [{"field": "MANAGER"}, {"field": "BLOCKED", "direction": "DESC"}],
        # computed at the request's moment: answered by the resolver, as the same
        [{"field": "CAN_LOGIN", "direction": "DESC"}, {"field": "LOGIN"}],
    ],
)
async def test_sub_accounts_a_page_at_a_time_in_any_order(
    family: Paths, order: list[dict[str, str]] | None
) -> None:
    clients = await owners(family)
    parent = max(clients, key=lambda c: c["subAccounts"]["totalCount"])
    assert parent["subAccounts"]["totalCount"] >= 12
    variables: dict[str, Any] = {"id": parent["id"], "subs": 5, "orderBy": order}
    compiled = not any(key["field"] == "CAN_LOGIN" for key in order or [])
    logins: list[str] = []
    while True:
        body = await family.same(CARD, variables, compiled=compiled)
        subs = body["data"]["client"]["subAccounts"]
        logins += [node["login"] for node in subs["nodes"]]
        if not subs["pageInfo"]["hasNextPage"]:
            break
        variables["subsAfter"] = subs["pageInfo"]["endCursor"]
    assert len(set(logins)) == parent["subAccounts"]["totalCount"]
    if order == [{"field": "LOGIN"}]:
        assert logins == sorted(logins)
    # and below a list: each parent's first page, one window statement for all of them
    body = await family.same(NESTED_IN_LIST, {"first": 80, "orderBy": order}, compiled=compiled)
    pages = [node["subAccounts"] for node in body["data"]["clients"]["nodes"]]
    assert max(page["totalCount"] for page in pages) >= 12


NESTED_IN_LIST = """
query Nested($first: Int, $orderBy: [ClientOrder!]) {
  clients(first: $first) {
    nodes {
      login
      creditEntries(first: 2) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id kind amount { amount currency } createdBy { name } } }
      }
      subAccounts(first: 2, orderBy: $orderBy) {
        totalCount
        edges { cursor node { login creditEntries(last: 1) { totalCount nodes { id } } } }
      }
      parent { login subAccounts { totalCount nodes { login } } }
    }
  }
}
"""


@pytest.mark.parametrize("order_by", [None, [{"field": "NAME", "direction": "DESC"}]])
async def test_nested_connections_below_a_list_are_one_statement_per_level(
    paths: Paths, listing: Listing, order_by: list[dict[str, str]] | None
) -> None:
    variables = {"first": 60, "orderBy": order_by}
    body = await paths.same(NESTED_IN_LIST, variables)
    nodes = body["data"]["clients"]["nodes"]
    assert any(node["creditEntries"]["totalCount"] > 2 for node in nodes)
    assert any(node["subAccounts"]["edges"] for node in nodes)
    assert any(node["parent"] for node in nodes)
    # asked again: the page, the ledger pages, the sub-accounts' pages, the parents'
    # sub-accounts, and the sub-accounts' ledgers — one statement each (the counts are
    # columns of their owners' rows)
    headers = {"Authorization": f"Bearer {paths.token}"}
    listing.statements.clear()
    body = {"query": NESTED_IN_LIST, "variables": variables}
    await paths.compiled.post("/graphql", json=body, headers=headers)
    assert len(selects(listing)) == 5


async def test_the_card_is_three_statements(paths: Paths, listing: Listing) -> None:
    clients = await owners(paths)
    by_subs = max(clients, key=lambda c: c["subAccounts"]["totalCount"])
    query = CARD.replace(
        "creditEntries(first: 2) { totalCount nodes { id amount { amount } } }", ""
    )
    await paths.same(query, {"id": by_subs["id"]})
    listing.statements.clear()
    headers = {"Authorization": f"Bearer {paths.token}"}
    body = {"query": query, "variables": {"id": by_subs["id"]}}
    await paths.compiled.post("/graphql", json=body, headers=headers)
    # the client with its joins and both counts, its ledger page, its sub-accounts' page
    assert len(selects(listing)) == 3


@pytest.mark.parametrize(
    "variables",
    [
        {"id": "Q2xpZW50Ojk5OTk5OTk="},  # Client:9999999, no such client
        {"id": "U3RhZmZVc2VyOjE="},  # StaffUser:1, another type's ID
        {"login": "nobody-here"},
        {"login": "K\u212aLVIN"},  # the Kelvin sign: no login can hold it
    ],
)
async def test_no_client_is_null_on_both_paths(paths: Paths, variables: dict[str, Any]) -> None:
    body = await paths.same(CARD, variables)
    assert body["data"] == {"client": None}


@pytest.mark.parametrize(
    "variables",
    [
        {},  # neither id nor login
        {"id": "Q2xpZW50OjE=", "login": "acme"},
        {"id": "not an id"},
        {"id": "Q2xpZW50OjE=", "entries": 0},
        {"id": "Q2xpZW50OjE=", "after": "bad-cursor"},
        {"id": "Q2xpZW50OjE=", "subs": 101},
        {"id": "Q2xpZW50OjE=", "orderBy": [{"field": "LOGIN"}, {"field": "LOGIN"}]},
    ],
)
async def test_the_cards_errors_come_from_the_executor(
    paths: Paths, variables: dict[str, Any]
) -> None:
    body = await paths.same(CARD, variables, compiled=False)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


NODE = f"""
query Node($id: ID!) {{
  node(id: $id) {{
    __typename id
    ... on Client {{ {CLIENT_FIELDS} creditEntries(first: 2) {{ totalCount nodes {{ id kind }} }} }}
    ... on CreditEntry {{ kind }}
  }}
}}
"""


async def test_node_with_a_client_id_is_compiled_and_identical(paths: Paths) -> None:
    clients = await owners(paths)
    client = max(clients, key=lambda c: c["creditEntries"]["totalCount"])
    body = await paths.same(NODE, {"id": client["id"]})
    assert body["data"]["node"]["login"] == client["login"]
    entry = body["data"]["node"]["creditEntries"]["nodes"][0]["id"]
    # another type's ID, no such client, a malformed ID: the executor's
    other = await paths.same(NODE, {"id": entry}, compiled=False)
    assert other["data"]["node"]["kind"]
    gone = await paths.same(NODE, {"id": "Q2xpZW50Ojk5OTk5OTk="})
    assert gone["data"] == {"node": None}
    bad = await paths.same(NODE, {"id": "nonsense"}, compiled=False)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# Random shapes of the card: any subset of the client's fields, aliases, nested connections
# with any page arguments and order, nested again, through fragments or not.
SCALARS = [
    "id",
    "login",
    "name",
    "email",
    "status",
    "blocked",
    "canLogin",
    "effectiveLanguage",
    "validTill",
    "createdAt",
    "balance { amount currency }",
    "block { reason blockedBy { name } }",
    "manager { id name }",
    "parent { login manager { email } }",
    "connections { __typename type status lastSeenAt }",
    "departments { id name }",
    "categories { __typename name }",
    "allDepartments",
    "allCategories",
    "customFields { __typename value definition { id key label type options required } }",
    "packagePrices { __typename package { id name description isActive } basePrice { amount }"
    " price { amount currency } adjustmentPercent }",
]
ENTRY_FIELDS = [
    "id",
    "kind",
    "amount { amount currency }",
    "balanceAfter { amount }",
    "paymentMethod",
    "comment",
    "createdAt",
    "createdBy { name role }",
]
ORDER_FIELDS = ["LOGIN", "NAME", "BALANCE", "CREATED_AT", "COUNTRY", "STATUS", "VALID_TILL"]


@st.composite
def page_arguments(draw: st.DrawFn, *, sub_accounts: bool) -> str:
    arguments = []
    size = draw(st.integers(min_value=1, max_value=12))
    arguments.append(f"{draw(st.sampled_from(['first', 'last']))}: {size}")
    if sub_accounts and draw(st.booleans()):
        fields = draw(st.lists(st.sampled_from(ORDER_FIELDS), min_size=1, max_size=2, unique=True))
        orders = ", ".join(
            f"{{field: {f}, direction: {draw(st.sampled_from(['ASC', 'DESC']))}}}" for f in fields
        )
        arguments.append(f"orderBy: [{orders}]")
    return ", ".join(arguments)


@st.composite
def connection_selection(draw: st.DrawFn, *, sub_accounts: bool, depth: int) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append("totalCount")
    if draw(st.booleans()):
        parts.append("pageInfo { hasNextPage hasPreviousPage startCursor endCursor }")
    node = draw(client_selection(depth + 1)) if sub_accounts else draw(entry_selection())
    if draw(st.booleans()):
        parts.append(f"edges {{ cursor node {{ {node} }} }}")
    else:
        parts.append(f"nodes {{ {node} }}")
    return " ".join(parts)


@st.composite
def entry_selection(draw: st.DrawFn) -> str:
    return " ".join(draw(st.lists(st.sampled_from(ENTRY_FIELDS), min_size=1, max_size=4)))


@st.composite
def client_selection(draw: st.DrawFn, depth: int = 0) -> str:
    fields = draw(st.lists(st.sampled_from(SCALARS), min_size=1, max_size=5, unique=True))
    parts = [
        f"a{n}: {field}" if draw(st.booleans()) and "{" not in field else field
        for n, field in enumerate(fields)
    ]
    if depth < 2:
        for name, subs in (("creditEntries", False), ("subAccounts", True)):
            if draw(st.booleans()):
                arguments = draw(page_arguments(sub_accounts=subs))
                inner = draw(connection_selection(sub_accounts=subs, depth=depth))
                parts.append(f"{name}({arguments}) {{ {inner} }}")
    if draw(st.booleans()):
        parts.append("... on Client { login }")
    return " ".join(parts)


@settings(
    max_examples=int(os.environ.get("SHAPES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    selection=client_selection(), root=st.sampled_from(["client", "clients"]), pick=st.integers()
)
async def test_any_shape_of_client_and_list_is_identical(
    family: Paths, selection: str, root: str, pick: int
) -> None:
    if root == "client":
        clients = family_clients.get(id(family)) or await owners(family)
        family_clients[id(family)] = clients
        chosen = clients[pick % len(clients)]["id"]
        query = f'{{ client(id: "{chosen}") {{ {selection} }} }}'
    else:
        query = f"{{ clients(first: 15) {{ nodes {{ {selection} }} }} }}"
    answered = family.operations.answered
    fast, slow = await family.both(query)
    assert fast.content == slow.content
    # compiled unless the request ends in an error (a shape past the depth or cost limits):
    # that one the executor answers
    assert (family.operations.answered > answered) == ("errors" not in fast.json())


family_clients: dict[int, list[dict[str, Any]]] = {}


async def test_a_clients_lists_are_compiled_and_identical(paths: Paths) -> None:
    # given the client with connections, departments and categories (tests/gql/conftest.py)
    query = """
    query Rich($login: String) {
      client(login: $login) {
        login connections { type status lastSeenAt } departments { id name }
        categories { id name } allDepartments allCategories
        customFields { value definition { __typename id key label type options position } }
        packagePrices { package { name } basePrice { amount } price { amount } adjustmentPercent }
        parent { login connections { type } allCategories }
        subAccounts { nodes { login departments { name } } }
      }
    }
    """
    body = await paths.same(query, {"login": RICH_LOGIN})
    client = body["data"]["client"]
    assert client["connections"]
    assert client["departments"]
    assert client["categories"]
    assert client["allDepartments"] is False
    assert any(field["value"] is not None for field in client["customFields"])
    assert client["packagePrices"]
    assert client["parent"] is not None
    listed = (
        "{ clients(first: 100) { nodes { login connections { type status } allDepartments } } }"
    )
    nodes = (await paths.same(listed))["data"]["clients"]["nodes"]
    assert any(node["connections"] for node in nodes)
    assert any(node["allDepartments"] for node in nodes)


@pytest.mark.parametrize(
    ("query", "compiled"),
    [
        ("{ viewer { __typename id email name role } }", True),
        ("{ countries { code name } }", True),
        ("{ currencies { code name minorUnits } }", True),
        ("{ languages { tag name nativeName hasTranslation } }", True),
        ("{ departments { id name } categories { __typename id name } }", True),
        ("{ customFieldDefinitions { id key label type options required position } }", True),
        ("{ packages { id name description isActive } }", True),
        ("{ packages(includeInactive: true) { name } viewer { email } }", True),
        ('{ passwordStrength(password: "correct horse battery") { score } }', True),
        ("{ staffUsers { id email name role } }", True),
        ("{ clientStats { total } }", True),
        ("{ apiTokens { name } }", True),
        # a field with a resolver of its own below: the executor
        ("{ packages { name prices { amount currency } } }", False),
    ],
)
async def test_root_fields_answered_by_their_resolvers_are_identical(
    paths: Paths, query: str, compiled: bool | None
) -> None:
    answered = paths.operations.answered
    fast, slow = await paths.both(query)
    assert fast.content == slow.content
    assert fast.status_code == 200
    if compiled is not None:
        assert (paths.operations.answered > answered) == compiled
    # and asked again, the same (from the compiled path's cache of the operation)
    again, _ = await paths.both(query)
    assert again.content == slow.content


@pytest.mark.parametrize(
    "query",
    [
        # selections that read no column of their own (found by schemathesis)
        '{ client(id: "Q2xpZW50OjE=") { __typename } }',
        '{ node(id: "Q2xpZW50OjE=") { __typename } }',
        '{ client(login: "acme") { ... on Node { __typename } } }',
        "{ clients(first: 2) { nodes { __typename } } }",
        "{ clients(first: 2) { __typename pageInfo { __typename } } }",
        '{ client(login: "acme") { creditEntries { __typename } subAccounts { __typename } } }',
    ],
)
async def test_selections_of_no_column_are_compiled_and_identical(paths: Paths, query: str) -> None:
    body = await paths.same(query)
    assert "errors" not in body


async def test_nodes_of_clients_are_compiled_and_identical(paths: Paths) -> None:
    clients = await owners(paths)
    ids = [client["id"] for client in clients[:5]]
    query = f"""query Nodes($ids: [ID!]!) {{
      nodes(ids: $ids) {{
        id ... on Client {{ {CLIENT_FIELDS} creditEntries(first: 1) {{ totalCount }} }}
      }}
    }}"""
    # in the IDs' order, twice where asked twice, null where there is none
    missing = "Q2xpZW50Ojk5OTk5OTk="
    body = await paths.same(query, {"ids": [ids[3], ids[0], missing, ids[3], *ids]})
    found = body["data"]["nodes"]
    assert [node and node["id"] for node in found] == [ids[3], ids[0], None, ids[3], *ids]
    await paths.same(query, {"ids": []})
    # another type's ID, a malformed one, too many: the executor's
    entry = (await paths.same(NODE, {"id": ids[0]}))["data"]["node"]["creditEntries"]["nodes"]
    if entry:
        await paths.same(query, {"ids": [ids[0], entry[0]["id"]]}, compiled=False)
    await paths.same(query, {"ids": ["nonsense"]}, compiled=False)
    await paths.same(query, {"ids": [ids[0]] * 101}, compiled=False)
