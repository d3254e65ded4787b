"""`clientFacets`: each dimension's counts equal a count in plain Python of the clients the
filter selects without its own condition on that dimension — on both databases, through the
tallies and through the rows."""

from collections import Counter
from typing import Any

import pytest

from tests.api import error_codes
from tests.gql.conftest import Listing
from tests.gql.test_clients_list import (
    FILTERS,
    blocked,
    python_filter,
    python_search,
)

FACETS = """
query($filter: ClientFilter, $search: String) {
  clientFacets(filter: $filter, search: $search) {
    statuses { status count }
    countries { country count }
    currencies { currency count }
    managers { manager { id name } count }
    blocked { value count }
    hasParent { value count }
    connectionTypes { type count }
  }
}
"""
# the filter fields each dimension leaves out, in the API's names
OWN_FIELDS = {
    "statuses": ("statuses",),
    "countries": ("countries",),
    "currencies": ("currencies",),
    "managers": ("managerIds", "ownership"),
    "blocked": ("blocked",),
    "hasParent": ("hasParent",),
    "connectionTypes": ("connectionTypes", "connectionStatus", "connectionMatch"),
}


def python_facets(
    listing: Listing, filter: dict[str, Any], search: str | None
) -> dict[str, list[tuple[Any, int]]]:
    """What each facet should say, counted in Python."""
    names = {s["id"]: s for s in listing.staff}
    facets: dict[str, list[tuple[Any, int]]] = {}
    for dimension, own in OWN_FIELDS.items():
        rest = {k: v for k, v in filter.items() if k not in own}
        match = python_filter(listing, rest)
        rows = [
            r for r in listing.clients if match(r) and (search is None or python_search(search)(r))
        ]
        counted: Counter[Any] = Counter()
        if dimension == "connectionTypes":
            ids = {r["id"] for r in rows}
            status = filter.get("connectionStatus")
            for c in listing.connections:
                if c["client_id"] in ids and (status is None or c["status"].value == status):
                    counted[c["type"].value] += 1
        else:
            for r in rows:
                value = {
                    "statuses": lambda r: r["status"].value,
                    "countries": lambda r: r["country"],
                    "currencies": lambda r: r["currency"],
                    "managers": lambda r: (
                        None if r["manager_id"] is None else names[r["manager_id"]]["name"]
                    ),
                    "blocked": blocked,
                    "hasParent": lambda r: r["parent_id"] is not None,
                }[dimension](r)
                if value is not None or dimension == "managers":
                    counted[value] += 1
        facets[dimension] = sorted(counted.items(), key=lambda item: (-item[1], str(item[0])))
    return facets


def api_facets(data: dict[str, Any]) -> dict[str, list[tuple[Any, int]]]:
    """The API's facets in the shape python_facets gives."""
    key = {
        "statuses": "status",
        "countries": "country",
        "currencies": "currency",
        "blocked": "value",
        "hasParent": "value",
        "connectionTypes": "type",
    }
    found = {
        dimension: [(entry[field], entry["count"]) for entry in data[dimension]]
        for dimension, field in key.items()
    }
    found["managers"] = [
        (None if e["manager"] is None else e["manager"]["name"], e["count"])
        for e in data["managers"]
    ]
    return found


def comparable(facets: dict[str, list[tuple[Any, int]]]) -> dict[str, Counter[Any]]:
    """Facets as counters (entries with equal counts may come in any order)."""
    return {dimension: Counter(dict(entries)) for dimension, entries in facets.items()}


CASES: list[tuple[dict[str, Any], str | None]] = [
    ({}, None),  # the tallies
    ({"statuses": ["ACTIVE"]}, None),  # the tallies, with status
    ({"statuses": ["ACTIVE", "INACTIVE"]}, None),
    ({"countries": ["DE", "US"]}, None),
    ({"countries": ["DE"], "statuses": ["INACTIVE"]}, None),
    ({"ownership": ["OWN"]}, None),
    ({"blocked": True}, None),
    ({"connectionTypes": ["SMPP"], "connectionStatus": "ONLINE"}, None),
    ({"hasParent": True, "currencies": ["EUR", "USD"]}, None),
    ({"countries": ["DE", "JP"], "blocked": False}, None),  # pairs, less the blocked
    ({"hasParent": True, "blocked": True}, None),  # only the blocked
    ({"ownership": ["UNASSIGNED", "OWN"], "statuses": ["ACTIVE"], "blocked": False}, None),
    ({"countries": ["DE"], "currencies": ["EUR"], "statuses": ["ACTIVE"]}, None),  # 2 dims
    ({"ownership": ["OWN_AND_SUB_ACCOUNTS"]}, None),
    ({"connectionTypes": ["HTTP"]}, None),  # one type: tallied
    ({"connectionTypes": ["HTTP"], "statuses": ["INACTIVE"], "blocked": False}, None),
    ({"connectionTypes": ["HTTP", "WEB"]}, None),  # two: counted in the rows
    ({"connectionTypes": ["SMTP"], "connectionStatus": "OFFLINE"}, None),
    ({"blocked": True, "connectionTypes": ["SMPP", "WEB"]}, None),  # bits among the blocked
    ({"hasConnections": False, "blocked": False, "countries": ["DE"]}, None),
    ({"connectionTypes": ["WEB"], "connectionStatus": "ONLINE", "connectionMatch": "ALL"}, None),
    ({}, "acme"),
    ({"statuses": ["ACTIVE"]}, "example"),
    *((f, None) for f in FILTERS[::4]),
]


@pytest.mark.parametrize(
    ("filter", "search"), CASES, ids=lambda v: str(v)[:50] if v is not None else "-"
)
async def test_each_facet_counts_what_its_choices_would_select(
    listing: Listing, filter: dict[str, Any], search: str | None
) -> None:
    # when the facets are asked for a filter and search
    data = (await listing.api(FACETS, {"filter": filter, "search": search}))["clientFacets"]
    got = api_facets(data)
    want = python_facets(listing, filter, search)
    # then each dimension counts exactly what Python counts, values without clients left out
    assert comparable(got) == comparable(want)
    for dimension, entries in got.items():
        assert all(n > 0 for _, n in entries), dimension
        assert [n for _, n in entries] == sorted((n for _, n in entries), reverse=True)


async def test_a_facets_count_is_what_choosing_it_gives(listing: Listing) -> None:
    # given a filter on one dimension
    filter = {"countries": ["DE"], "statuses": ["ACTIVE"]}
    data = (await listing.api(FACETS, {"filter": filter}))["clientFacets"]
    # then choosing a currency shown in the panel gives as many clients as it said
    for entry in data["currencies"]:
        chosen = {**filter, "currencies": [entry["currency"]]}
        count = """query($filter: ClientFilter) { clients(filter: $filter) { totalCount } }"""
        total = (await listing.api(count, {"filter": chosen}))["clients"]["totalCount"]
        assert total == entry["count"]


async def test_without_a_filter_the_client_dimensions_come_from_the_tallies(
    listing: Listing,
) -> None:
    for filter in ({"statuses": ["ACTIVE"]}, {"countries": ["DE"], "blocked": False}):
        listing.statements.clear()
        await listing.api(FACETS, {"filter": filter})
        # every count is a sum of tallies, or reads the blocked clients (few: by the index on
        # the block's end), or the connections; none groups all clients
        read = [
            sql for sql, _ in listing.statements if "client_tallies" in sql or "FROM clients" in sql
        ]
        assert read
        assert all(
            "client_tallies" in sql or "client_pair_tallies" in sql or "block_ends_at >" in sql
            for sql in read
            if "client_connections" not in sql
        ), read


async def test_bad_filters_are_refused_before_counting(listing: Listing) -> None:
    errors = await listing.api.errors(FACETS, {"filter": {"countries": ["XX"]}})
    assert error_codes(errors) == ["BAD_USER_INPUT"]


async def test_what_the_tallies_cannot_tell_is_counted_in_one_pass(listing: Listing) -> None:
    # given a search, which the tallies know nothing of
    listing.statements.clear()
    data = await listing.api(FACETS, {"search": "example"})
    assert "errors" not in data
    grouped = [sql for sql, _ in listing.statements if "FROM clients" in sql]
    if listing.engine.dialect.name == "postgresql":
        # then one statement counts every dimension: a GROUP BY per dimension in one pass
        assert len(grouped) == 1, grouped
        assert "GROUPING SETS" in grouped[0]
    else:  # SQLite has no GROUPING SETS: a statement per dimension
        assert len(grouped) == 7, grouped
