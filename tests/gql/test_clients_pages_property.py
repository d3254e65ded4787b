"""Property: for any filter, order and page size, walking the pages forwards, and backwards,
yields exactly the full ordered result — no row lost, none repeated."""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db import keyset
from tests.gql.conftest import SEEDED_AT, Listing
from tests.gql.test_clients_list import SORT_COLUMNS, expected, walk

filters = st.fixed_dictionaries(
    {},
    optional={
        "statuses": st.lists(st.sampled_from(["ACTIVE", "INACTIVE"]), max_size=2, unique=True),
        "countries": st.lists(
            st.sampled_from(["US", "DE", "JP", "KW", "IN", "BR"]), max_size=3, unique=True
        ),
        "blocked": st.booleans(),
        "hasParent": st.booleans(),
        "ownership": st.lists(
            st.sampled_from(["OWN", "OTHERS", "UNASSIGNED", "OWN_AND_SUB_ACCOUNTS"]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
        "neverActive": st.booleans(),
        "hasConnections": st.booleans(),
        "inactiveSince": st.sampled_from(
            [SEEDED_AT.replace(year=2026, month=1).isoformat(), SEEDED_AT.isoformat()]
        ),
        "customFields": st.lists(
            st.sampled_from(
                [
                    {"key": "tier", "equals": "silver"},
                    {"key": "newsletter", "equals": True},
                    {"key": "vat_number", "isEmpty": False},
                    {"key": "employees", "isEmpty": True},
                    {"key": "vat_number", "contains": "eu2"},
                ]
            ),
            min_size=1,
            max_size=2,
        ),
        "balanceAbove": st.sampled_from(["-100", "0", "250.5"]),
        "createdAfter": st.sampled_from(
            [
                SEEDED_AT.replace(year=2025).isoformat(),
                SEEDED_AT.replace(year=2024, month=9).isoformat(),
            ]
        ),
        "connectionTypes": st.lists(
            st.sampled_from(["SMPP", "HTTP", "SMTP", "WEB"]), min_size=1, max_size=2, unique=True
        ),
        "connectionStatus": st.sampled_from(["ONLINE", "OFFLINE"]),
        "connectionMatch": st.sampled_from(["ANY", "ALL"]),
    },
)
orders = st.lists(
    st.fixed_dictionaries(
        {
            "field": st.sampled_from(sorted(SORT_COLUMNS)),
            "direction": st.sampled_from(["ASC", "DESC"]),
        }
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda order: order["field"],
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(filter=filters, order_by=orders, size=st.integers(min_value=3, max_value=60))
async def test_walking_pages_yields_the_whole_ordered_result(
    listing: Listing, filter: dict[str, Any], order_by: list[dict[str, str]], size: int
) -> None:
    want = expected(listing, filter, order_by=order_by)
    assert await walk(listing, size=size, filter=filter, order_by=order_by) == want
    assert await walk(listing, size=size, filter=filter, order_by=order_by, backwards=True) == want


# Orderings led by a key whose rows a page reads in branches (db/keyset.py): a key of known
# values (each value, and the range between a block's two infinities, apart), a nullable one
# (its values past the position, then its NULLs), one whose values many clients share (the
# position's value, the later values, the NULLs); pages of 7 cross from one branch to the
# next many times.
LEADS = [
    "STATUS",
    "BLOCKED",
    "CAN_LOGIN",
    "MANAGER",
    "LAST_ACTIVITY_AT",
    "VALID_TILL",
    "COUNTRY",
    "CREDIT_LIMIT",
    "CHATS",
]


@pytest.mark.parametrize("directions", [("ASC", "ASC"), ("DESC", "ASC"), ("DESC", "DESC")])
@pytest.mark.parametrize("lead", LEADS)
async def test_every_page_of_a_branched_ordering_both_ways(
    listing: Listing, lead: str, directions: tuple[str, str]
) -> None:
    # the next key never empty (LOGIN) or sometimes (NAME: a branch of its own within)
    second = "NAME" if LEADS.index(lead) % 2 else "LOGIN"
    order_by = [
        {"field": lead, "direction": directions[0]},
        {"field": second, "direction": directions[1]},
    ]
    want = expected(listing, {}, order_by=order_by)
    assert await walk(listing, size=7, filter={}, order_by=order_by) == want
    assert await walk(listing, size=7, filter={}, order_by=order_by, backwards=True) == want


# A key of known values after the first (each country's clients who can log in, then those
# who cannot: a branch per value), and BALANCE before another key (sought from the amount).
@pytest.mark.parametrize(
    "order",
    [
        [("COUNTRY", "ASC"), ("CAN_LOGIN", "DESC")],
        [("VALID_TILL", "DESC"), ("STATUS", "ASC"), ("LOGIN", "DESC")],
        [("CREDIT_LIMIT", "DESC"), ("BLOCKED", "ASC")],
        [("EMAIL", "ASC"), ("CAN_LOGIN", "ASC")],
        [("BALANCE", "ASC"), ("NAME", "DESC")],
        [("LAST_ACTIVITY_AT", "ASC"), ("UPDATED_AT", "DESC")],
    ],
    ids=lambda order: ",".join(f"{f}:{d}" for f, d in order),
)
async def test_every_page_of_a_key_partitioned_within_groups(
    listing: Listing, order: list[tuple[str, str]]
) -> None:
    order_by = [{"field": f, "direction": d} for f, d in order]
    want = expected(listing, {}, order_by=order_by)
    assert await walk(listing, size=7, filter={}, order_by=order_by) == want
    assert await walk(listing, size=7, filter={}, order_by=order_by, backwards=True) == want


# A column many clients share leading: the value after the position's is found among the
# clients the filter selects (a subquery with the filter's conditions, some of them EXISTS
# over other tables), so a filter must give the same pages as the Python model's.
SHARED_FILTERS = [
    {"statuses": ["ACTIVE"], "hasConnections": True},
    {"connectionTypes": ["HTTP"], "connectionStatus": "ONLINE", "blocked": False},
    {"ownership": ["OWN", "UNASSIGNED"], "countries": ["DE", "US", "JP"]},
]


@pytest.mark.parametrize("filter", SHARED_FILTERS, ids=lambda f: ",".join(f))
@pytest.mark.parametrize("lead", ["COUNTRY", "CURRENCY", "CREDIT_LIMIT", "SUPPORT_REQUESTS"])
async def test_every_page_of_a_shared_lead_with_a_filter(
    listing: Listing, lead: str, filter: dict[str, Any]
) -> None:
    order_by = [{"field": lead, "direction": "DESC"}, {"field": "NAME", "direction": "ASC"}]
    want = expected(listing, filter, order_by=order_by)
    assert want  # the filter selects someone
    assert await walk(listing, size=4, filter=filter, order_by=order_by) == want
    assert await walk(listing, size=4, filter=filter, order_by=order_by, backwards=True) == want


@pytest.mark.parametrize("many", [1, 3, 10_000])
@pytest.mark.parametrize("lead", ["COUNTRY", "CREDIT_LIMIT"])
async def test_a_shared_lead_gives_the_same_pages_whichever_index_reads_a_value(
    listing: Listing, lead: str, many: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the threshold above which a value's clients are read by the next key's index
    # (db.keyset.MANY: 2,000 clients) lowered so that the test's values cross it, or not
    monkeypatch.setattr(keyset, "MANY", many)
    for filter in ({}, SHARED_FILTERS[0]):
        order_by = [{"field": lead, "direction": "ASC"}, {"field": "NAME", "direction": "DESC"}]
        want = expected(listing, filter, order_by=order_by)
        assert await walk(listing, size=5, filter=filter, order_by=order_by) == want
        assert await walk(listing, size=5, filter=filter, order_by=order_by, backwards=True) == want
