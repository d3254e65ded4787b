"""Documents written to make the server work hard: each is refused before it runs, or answered
within a fixed budget. The budget is asserted on what the server computed (`extensions.cost`)
and on the work it did (SQL statements, Python function calls), never on wall time.

Refusals are top-level errors with a code: QUERY_TOO_COSTLY, QUERY_TOO_DEEP, TOO_MANY_ALIASES,
TOO_MANY_TOKENS, UNAUTHENTICATED...
"""

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import httpx
import pytest

from tests.api import GraphQLClient, error_codes
from tests.factories import Factory
from tests.gql.conftest import RICH_LOGIN, Listing
from tests.hostile import global_id

MAX_NODES = 50_000  # the default limit (gql/limits.py)
MUTATION_POINTS = 10  # points per mutation field (gql/limits.py)
REFUSALS = {
    "QUERY_TOO_COSTLY",
    "QUERY_TOO_DEEP",
    "TOO_MANY_ALIASES",
    "TOO_MANY_TOKENS",
    "TOO_MANY_DIRECTIVES",
    "UNAUTHENTICATED",
}
# Python function calls one request may make before the test stops it: an ordinary page of
# 100 clients makes far fewer; an exponential walk of a document makes far more.
CALL_BUDGET = 3_000_000


class WorkBudgetExceeded(BaseException):  # not an Exception: the server must not catch it
    pass


@dataclass
class Work:
    """What one request cost: its answer, the Python calls made and the SQL statements run."""

    status: int
    body: dict[str, Any]
    calls: int
    statements: int

    @property
    def codes(self) -> list[str]:
        return error_codes(self.body.get("errors") or [])

    @property
    def refused(self) -> bool:
        return self.body.get("data") is None and bool(set(self.codes) & REFUSALS)

    @property
    def cost(self) -> dict[str, Any]:
        return (self.body.get("extensions") or {}).get("cost") or {}


async def measure(
    send: Callable[[], Awaitable[httpx.Response]], statements: list[tuple[str, Any]]
) -> Work:
    """Send a request, counting the Python function calls made in this thread while it is
    handled (a measure of CPU work that does not depend on the machine) and the statements."""
    calls = 0

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1
            if calls > CALL_BUDGET:
                raise WorkBudgetExceeded

    statements.clear()
    sys.setprofile(count)
    try:
        response = await send()
    except WorkBudgetExceeded:
        pytest.fail(f"the request made more than {CALL_BUDGET:,} Python calls; it was stopped")
    finally:
        sys.setprofile(None)
    return Work(response.status_code, response.json(), calls, len(selects(statements)))


def selects(statements: list[tuple[str, Any]]) -> list[str]:
    return [sql for sql, _ in statements if sql.lstrip().upper().startswith(("SELECT", "WITH"))]


async def request(
    listing: Listing, query: str, variables: dict[str, Any] | None = None, *, token: bool = True
) -> Work:
    headers = {"Authorization": f"Bearer {listing.admin_token}"} if token else {}

    async def send() -> httpx.Response:
        return await listing.api.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    return await measure(send, listing.statements)


def fan_out(levels: int) -> str:
    """`query { ...F<levels> }` where each fragment spreads the one below it twice: written
    out, 2^levels selections of __typename."""
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }} " + " ".join(fragments)


async def warm_up(listing: Listing) -> None:
    """One ordinary request first: caches and lazy imports are not the request's work."""
    await request(listing, "{ viewer { email } }")


@pytest.mark.parametrize("token", [True, False], ids=["with token", "anonymous"])
async def test_fragment_fan_out_costs_work_linear_in_the_document(
    listing: Listing, token: bool
) -> None:
    # given documents of 8 and of 16 levels of fragments, each spreading the one below twice
    await warm_up(listing)
    # when each is sent
    small = await request(listing, fan_out(8), token=token)
    large = await request(listing, fan_out(16), token=token)
    # then twice the document costs at most about twice the work (linear), not 2^8 times
    assert large.calls < 3 * small.calls, (small.calls, large.calls)
    # and each is refused with a code, or answered without touching the database
    for work in (small, large):
        assert work.status < 500
        assert work.refused or (work.body.get("data") and not work.body.get("errors")), work.body
        assert work.statements <= 1  # at most the token's lookup


async def test_fragment_fan_out_does_not_expand_when_answered(listing: Listing) -> None:
    # given 2^16 ways to reach __typename through fragments
    await warm_up(listing)
    # when it is sent
    work = await request(listing, fan_out(16))
    # then it is refused, or answered with one __typename (fields merge) and a small cost
    if not work.refused:
        assert work.body["data"] == {"__typename": "Query"}
        assert work.cost.get("requestedQueryCost", 0) <= 1


NESTED_LISTS = """
{ clients(first: 100) { nodes { subAccounts(first: 100) { nodes {
    creditEntries(first: 100) { nodes { id amount { amount } } } } } } } }
"""


async def test_nested_lists_that_may_return_a_million_nodes_are_refused(
    listing: Listing,
) -> None:
    # given lists of 100 inside lists of 100 inside lists of 100: up to 1,010,100 nodes
    await warm_up(listing)
    # when it is sent
    work = await request(listing, NESTED_LISTS)
    # then it is refused as too costly before any row is read
    assert "QUERY_TOO_COSTLY" in work.codes, work.body
    assert work.statements == 0


VARIABLE_DEFAULTS = """
query Deep($n: Int = 100) { clients(first: $n) { nodes { subAccounts(first: $n) { nodes {
    creditEntries(first: $n) { nodes { id } } } } } } }
"""


async def test_page_sizes_from_variable_defaults_are_counted(listing: Listing) -> None:
    # given page sizes that come from a variable's default value (no variables sent)
    await warm_up(listing)
    # when it is sent
    work = await request(listing, VARIABLE_DEFAULTS)
    # then the default counts as if sent: 100 * 100 * 100 nodes, refused before any row is read
    assert "QUERY_TOO_COSTLY" in work.codes, work.body
    assert work.statements == 0


async def test_page_sizes_from_sent_variables_are_counted(listing: Listing) -> None:
    # the same document with the variable sent
    await warm_up(listing)
    work = await request(listing, VARIABLE_DEFAULTS, {"n": 100})
    assert "QUERY_TOO_COSTLY" in work.codes, work.body
    assert work.statements == 0


def hundred_ids(listing: Listing) -> list[str]:
    return [global_id("Client", row["id"]) for row in listing.clients[:100]]


NODES_WITH_LEDGERS = """
query Ledgers($ids: [ID!]!) { nodes(ids: $ids) { id ... on Client {
    creditEntries(first: 100) { nodes { id amount { amount } } } } } }
"""


async def test_nodes_cost_counts_each_id_times_the_lists_below_it(listing: Listing) -> None:
    # given 100 ids, and a page of 100 ledger entries under each
    await warm_up(listing)
    # when it is sent
    work = await request(listing, NODES_WITH_LEDGERS, {"ids": hundred_ids(listing)})
    # then it is refused, or its cost counts 100 + 100 * 100 nodes and the lists are read in
    # a few batched statements (not one per id)
    if not work.refused:
        assert not work.body.get("errors"), work.body
        assert work.cost["nodes"] >= 100 + 100 * 100, work.cost
        assert work.statements <= 10


NODES_WITH_NESTED_LISTS = """
query Ledgers($ids: [ID!]!) { nodes(ids: $ids) { ... on Client {
    subAccounts(first: 100) { nodes { creditEntries(first: 100) { nodes { id } } } } } } }
"""


async def test_nodes_with_nested_lists_over_the_limit_are_refused(listing: Listing) -> None:
    # given 100 ids * 100 sub-accounts * 100 entries: up to 1,010,100 nodes
    await warm_up(listing)
    # when it is sent
    work = await request(listing, NODES_WITH_NESTED_LISTS, {"ids": hundred_ids(listing)})
    # then it is refused before any row is read
    assert "QUERY_TOO_COSTLY" in work.codes, work.body
    assert work.statements <= 1  # at most the token's lookup


def strength_aliases(count: int) -> str:
    fields = " ".join(
        f'p{n}: passwordStrength(password: "correct horse {n} battery staple") {{ score }}'
        for n in range(count)
    )
    return f"{{ {fields} }}"


async def test_sixteen_aliases_of_an_expensive_field_are_refused(listing: Listing) -> None:
    # given 16 aliases of passwordStrength (zxcvbn runs for each)
    await warm_up(listing)
    # when it is sent
    work = await request(listing, strength_aliases(16))
    # then it is refused: too many aliases, nothing rated
    assert "TOO_MANY_ALIASES" in work.codes, work.body
    assert work.statements <= 1


async def test_aliases_in_fragments_count_against_the_limit(listing: Listing) -> None:
    # given 8 aliases in a fragment spread twice under different names, and one more
    fields = " ".join(
        f'p{n}: passwordStrength(password: "pass {n} word") {{ score }}' for n in range(8)
    )
    query = (
        f"{{ a: viewer {{ email }} ...A ... on Query {{ ...B }} }} "
        f"fragment A on Query {{ {fields} }} "
        f'fragment B on Query {{ q: passwordStrength(password: "x") {{ score }} ...A }}'
    )
    await warm_up(listing)
    work = await request(listing, query)
    assert "TOO_MANY_ALIASES" in work.codes, work.body


async def test_a_long_password_is_rated_without_unbounded_work(listing: Listing) -> None:
    # given the longest password a body may carry, rated 15 times (the alias limit)
    password = "aB3$" * 6_000
    query = (
        "query($p: String!) { "
        + " ".join(f"p{n}: passwordStrength(password: $p) {{ score }}" for n in range(15))
        + " }"
    )
    await warm_up(listing)
    # when it is sent
    work = await request(listing, query, {"p": password})
    # then it is refused, or rated within the work budget (measure() stops it past that)
    assert work.status < 500
    assert "INTERNAL_SERVER_ERROR" not in work.codes, work.body


CREDIT_ADD_FIELDS = " ".join(
    f'a{n}: creditAdd(input: {{clientId: $client, amount: "1.00", paymentMethod: CASH}}) '
    "{ userErrors { code } }"
    for n in range(15)
)


@pytest.mark.parametrize(
    "document",
    [
        f"mutation($client: ID!) {{ ...M }} fragment M on Mutation {{ {CREDIT_ADD_FIELDS} }}",
        f"mutation($client: ID!) {{ ... on Mutation {{ {CREDIT_ADD_FIELDS} }} }}",
        f"mutation($client: ID!) {{ {CREDIT_ADD_FIELDS} }}",
    ],
    ids=["in a fragment", "in an inline fragment", "at the top"],
)
async def test_every_mutation_field_is_charged_wherever_it_is_written(
    api: GraphQLClient, factory: Factory, document: str
) -> None:
    # given 15 payments, written in a fragment, an inline fragment, or at the top
    api.token = await factory.admin_token()
    client = await factory.client()
    # when they are sent
    response = await api.post(document, {"client": global_id("Client", client.id)})
    body = response.json()
    # then the operation is refused, or charged ten points for each of the 15
    codes = error_codes(body.get("errors") or [])
    if not (body.get("data") is None and set(codes) & REFUSALS):
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 15 * MUTATION_POINTS, cost


async def test_a_page_of_the_richest_client_stays_within_its_computed_cost(
    listing: Listing,
) -> None:
    # given an ordinary, allowed nested read
    query = f"""{{ client(login: "{RICH_LOGIN}") {{ subAccounts(first: 100) {{ nodes {{
        creditEntries(first: 100) {{ nodes {{ id }} }} }} }} }} }}"""
    await warm_up(listing)
    # when it is sent
    work = await request(listing, query)
    # then its cost counts every node it may return, and a few statements read them
    assert not work.body.get("errors"), work.body
    assert work.cost["nodes"] >= 100 + 100 * 100
    assert work.cost["nodes"] <= MAX_NODES
    assert work.statements <= 10
