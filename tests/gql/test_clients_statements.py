"""No N+1: a page of 1 client and a page of 100 cost the same, small number of statements."""

from typing import Any

from sqlalchemy import text

from bench.workloads import CARD
from gql.node import to_global_id
from tests.gql.conftest import RICH_LOGIN, Listing

EVERYTHING = """
query Everything($first: Int!, $filter: ClientFilter) {
  clients(first: $first, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges {
      cursor
      node {
        id login name email phone country currency language effectiveLanguage status
        blocked canLogin block { reason blockedAt blockedUntil blockedBy { name } }
        balance { amount currency } creditLimit { amount } validTill moderation avatarUrl
        priceAdjustmentPercent lastActivityAt chatsCount supportRequestsCount
        createdAt updatedAt
        manager { id name email }
        parent { id login manager { name } }
        subAccounts(first: 5) { totalCount nodes { login balance { amount } } }
        creditEntries(first: 5) {
          totalCount
          nodes {
            kind amount { amount } balanceAfter { amount } createdBy { name }
            reverses { id } reversedBy { id }
            lines { description amount { amount } package { name } }
          }
        }
        connections { type status lastSeenAt }
        customFields { definition { key label type options } value }
        departments { name } allDepartments
        categories { name } allCategories
        packagePrices { package { name } basePrice { amount } price { amount } }
      }
    }
  }
}
"""
# The statements one request of EVERYTHING runs, at any page size: the page, its count, then
# one batch per kind of relation: staff users (managers, block and entry authors together),
# parents, sub-account pages, sub-account counts, ledger pages, ledger counts, reversed
# entries, reversals, credit note lines, their packages, connections, custom field
# definitions, custom field values, departments, categories, package prices. (The token was
# looked up by the warm-up request, and is trusted for a second: services.auth.TokenCache.)
EXPECTED_STATEMENTS = 18


def selects(statements: list[tuple[str, Any]]) -> list[str]:
    return [sql for sql, _ in statements if sql.lstrip().upper().startswith(("SELECT", "WITH"))]


async def count_statements(
    listing: Listing, first: int, filter: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    await listing.api(EVERYTHING, {"first": 1})  # warm up: token last-used stamp, caches
    listing.statements.clear()
    data = await listing.api(EVERYTHING, {"first": first, "filter": filter})
    return len(selects(listing.statements)), data


async def test_statement_count_is_the_same_for_1_and_100_rows(listing: Listing) -> None:
    # the one client has one of every relation (see RICH_LOGIN), so nothing is skipped
    one, small = await count_statements(listing, 1, {"login": RICH_LOGIN})
    hundred, large = await count_statements(listing, 100)
    assert len(small["clients"]["edges"]) == 1
    assert len(large["clients"]["edges"]) == 100
    assert one == hundred == EXPECTED_STATEMENTS


async def test_the_large_page_really_exercises_every_relation(listing: Listing) -> None:
    _, data = await count_statements(listing, 100)
    nodes = [edge["node"] for edge in data["clients"]["edges"]]
    assert any(n["manager"] for n in nodes)
    assert any(n["parent"] for n in nodes)
    assert any(n["subAccounts"]["nodes"] for n in nodes)
    entries = [e for n in nodes for e in n["creditEntries"]["nodes"]]
    assert any(e["lines"] for e in entries)
    assert any(e["reverses"] for e in entries)
    assert any(n["connections"] for n in nodes)
    assert any(v["value"] is not None for n in nodes for v in n["customFields"])
    assert any(n["departments"] for n in nodes)
    assert any(n["categories"] for n in nodes)
    assert any(n["block"] for n in nodes)
    assert all(n["packagePrices"] for n in nodes)


# The client card (bench/workloads.py CARD, compiled): the client with its manager and parent
# joined and its ledger's count, its ledger page with the entries' authors joined, its
# sub-account page.
CARD_STATEMENTS = 3


async def card_clients(listing: Listing) -> tuple[int, int]:
    """Two clients with a manager, sub-accounts, ledger entries and no parent: the one with the
    fewest entries and the one with the most."""
    async with listing.engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT p.id, (SELECT count(*) FROM credit_entries e WHERE e.client_id = p.id) "
                    "FROM clients p WHERE p.manager_id IS NOT NULL AND p.parent_id IS NULL "
                    "AND EXISTS (SELECT 1 FROM clients s WHERE s.parent_id = p.id) "
                    "AND EXISTS (SELECT 1 FROM credit_entries e WHERE e.client_id = p.id) "
                    "ORDER BY 2, 1"
                )
            )
        ).all()
    return rows[0][0], rows[-1][0]


async def test_the_card_costs_the_same_statements_for_1_and_many_entries(
    listing: Listing,
) -> None:
    fewest, most = await card_clients(listing)
    counts, entries = [], []
    for pk, size in ((fewest, 20), (most, 1), (most, 20)):
        variables = {"id": to_global_id("Client", pk)}
        card = CARD.replace("creditEntries(first: 20)", f"creditEntries(first: {size})")
        await listing.api(card, variables)  # warm up: the token's look-up
        listing.statements.clear()
        data = (await listing.api(card, variables))["client"]
        counts.append(len(selects(listing.statements)))
        assert data["manager"] is not None
        assert data["subAccounts"]["nodes"]
        entries.append(len(data["creditEntries"]["nodes"]))
    assert entries[1] == 1
    assert entries[2] > max(entries[0], 1)
    assert counts == [CARD_STATEMENTS] * 3


ARGUED = """
query Argued($first: Int!, $filter: ClientFilter) {
  clients(first: $first, filter: $filter) {
    nodes {
      id
      subAccounts(first: 3, orderBy: [{field: CAN_LOGIN, direction: DESC}]) {
        totalCount nodes { login canLogin }
      }
      creditEntries(first: 3, kinds: [PAYMENT, DEDUCTION]) {
        totalCount pageInfo { hasNextPage } nodes { id kind }
      }
      recent: creditEntries(first: 2, from: "2020-01-01T00:00:00Z") { totalCount nodes { id } }
    }
  }
}
"""
ONE = """
query One($id: ID!) {
  client(id: $id) {
    id
    subAccounts(first: 3, orderBy: [{field: CAN_LOGIN, direction: DESC}]) {
      totalCount nodes { login canLogin }
    }
    creditEntries(first: 3, kinds: [PAYMENT, DEDUCTION]) {
      totalCount pageInfo { hasNextPage } nodes { id kind }
    }
    recent: creditEntries(first: 2, from: "2020-01-01T00:00:00Z") { totalCount nodes { id } }
  }
}
"""


async def test_connections_with_arguments_cost_the_same_for_1_and_100_rows(
    listing: Listing,
) -> None:
    # given nested connections with arguments: a computed sort, the ledger by kind and period
    counts = []
    for first, filter in ((1, {"login": RICH_LOGIN}), (100, None)):
        await listing.api(ARGUED, {"first": 1})  # warm up
        listing.statements.clear()
        data = await listing.api(ARGUED, {"first": first, "filter": filter})
        assert len(data["clients"]["nodes"]) == first
        counts.append(len(selects(listing.statements)))
    # then a page of 100 costs what a page of 1 does (a batch per connection and its count)
    assert counts[0] == counts[1], counts
    # and each client's connections are what asking for that client alone gives
    nodes = data["clients"]["nodes"]
    assert any(n["creditEntries"]["nodes"] for n in nodes)
    assert any(n["subAccounts"]["nodes"] for n in nodes)
    for node in nodes[::10]:
        alone = await listing.api(ONE, {"id": node["id"]})
        assert alone["client"] == node
