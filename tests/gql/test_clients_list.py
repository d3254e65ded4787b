"""`clients`: every filter, search, sort and page, checked against plain Python over the rows."""

import base64
import functools
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from db.enums import StaffRole
from db.models import Client
from db.session import create_sessionmaker
from services.actors import Actor
from services.clients import may_change
from tests.api import error_codes
from tests.gql.conftest import SEEDED_AT, Listing

PAGE = """
query Page($filter: ClientFilter, $search: String, $orderBy: [ClientOrder!],
           $first: Int, $after: String, $last: Int, $before: String) {
  clients(filter: $filter, search: $search, orderBy: $orderBy,
          first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { login } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
COUNT = """
query($filter: ClientFilter, $search: String) {
  clients(filter: $filter, search: $search) { totalCount }
}
"""
Row = dict[str, Any]
NOW = SEEDED_AT


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


# --- the expected answers, computed in Python ----------------------------------------------

SORT_COLUMNS = {
    "LOGIN": "login",
    "NAME": "name",
    "EMAIL": "email",
    "COUNTRY": "country",
    "CURRENCY": "currency",
    "STATUS": "status",
    "CREATED_AT": "created_at",
    "LAST_ACTIVITY_AT": "last_activity_at",
    "BALANCE": "balance",
    "VALID_TILL": "valid_till",
    "PHONE": "phone",
    "MANAGER": "manager",  # the manager's name, from the staff table (conftest)
    "BLOCKED": "block_ends",  # computed below
    "CREDIT_LIMIT": "credit_limit",
    "CHATS": "chats_count",
    "SUPPORT_REQUESTS": "support_requests_count",
    "UPDATED_AT": "updated_at",
    "CAN_LOGIN": "can_login",  # computed below
}


def block_ends(row: Row) -> datetime:
    """When the block ends: long ago for no block, never for one without an end."""
    if row["blocked_at"] is None:
        return datetime.min.replace(tzinfo=NOW.tzinfo)
    return row["blocked_until"] or datetime.max.replace(tzinfo=NOW.tzinfo)


def can_login(row: Row) -> bool:
    """`canLogin` at NOW: active, not blocked, paid access not over."""
    return (
        row["status"].value == "ACTIVE"
        and not blocked(row)
        and (row["valid_till"] is None or row["valid_till"] > NOW)
    )


def sort_value(row: Row, field: str) -> Any:
    computed = {"BLOCKED": block_ends, "CAN_LOGIN": can_login}.get(field)
    value = computed(row) if computed else row[SORT_COLUMNS[field]]
    return value.value if hasattr(value, "value") else value


def with_currency_first(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    """BALANCE sorts by currency, then amount (unless CURRENCY came before it)."""
    expanded: list[dict[str, str]] = []
    for key in keys:
        if key["field"] == "BALANCE" and "CURRENCY" not in [k["field"] for k in expanded]:
            expanded.append({**key, "field": "CURRENCY"})
        expanded.append(key)
    return expanded


def ordered(rows: list[Row], order_by: list[dict[str, str]] | None) -> list[str]:
    """Logins in the API's order: each key with NULLs last either way, then the id."""
    keys = with_currency_first(order_by or [{"field": "CREATED_AT", "direction": "DESC"}])

    def compare(a: Row, b: Row) -> int:
        for key in keys:
            x, y = sort_value(a, key["field"]), sort_value(b, key["field"])
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1
            result = -1 if x < y else 1
            return -result if key.get("direction", "ASC") == "DESC" else result
        result = -1 if a["id"] < b["id"] else 1
        return -result if keys[-1].get("direction", "ASC") == "DESC" else result

    return [row["login"] for row in sorted(rows, key=functools.cmp_to_key(compare))]


def blocked(row: Row) -> bool:
    return row["blocked_at"] is not None and (
        row["blocked_until"] is None or row["blocked_until"] > NOW
    )


def contains(value: str | None, text: str) -> bool:
    return value is not None and text.lower() in value.lower()


def digits(text: str) -> str:
    return re.sub(r"\D", "", text.replace("(0)", "")).lstrip("0")


def connection_predicate(
    listing: Listing, types: list[str] | None, status: str | None
) -> Callable[[Row], bool]:
    matching = {
        c["client_id"]
        for c in listing.connections
        if (types is None or c["type"].value in types)
        and (status is None or c["status"].value == status)
    }
    return lambda row: row["id"] in matching


def connection_rule(
    listing: Listing, types: list[str] | None, status: str | None, match: str | None
) -> Callable[[Row], bool]:
    """Connections of `types` in `status`: any of them, or all of them (and at least one)."""
    if status is None or match != "ALL":
        return connection_predicate(listing, types, status)
    held: dict[int, list[str]] = {}
    for c in listing.connections:
        if not types or c["type"].value in types:
            held.setdefault(c["client_id"], []).append(c["status"].value)
    return lambda row: bool(held.get(row["id"])) and all(s == status for s in held[row["id"]])


def custom_value_rule(listing: Listing, condition: dict[str, Any]) -> Callable[[Row], bool]:
    def value(row: Row) -> Any:
        found = listing.custom_values.get((row["id"], condition["key"]))
        return None if found == "" else found

    if "isEmpty" in condition:
        return lambda row: (value(row) is None) == condition["isEmpty"]
    if "contains" in condition:
        return lambda row: (
            isinstance(value(row), str) and contains(value(row), condition["contains"])
        )
    wanted = condition["equals"]
    return lambda row: (
        value(row) is not None
        and type(value(row))
        in (
            (bool,)
            if isinstance(wanted, bool)
            else (int, float)
            if not isinstance(wanted, str)
            else (str,)
        )
        and value(row) == wanted
    )


def python_filter(listing: Listing, filter: dict[str, Any]) -> Callable[[Row], bool]:
    """The plain-Python meaning of a ClientFilter."""
    manager = listing.manager_id
    checks: list[Callable[[Row], bool]] = []
    own_parents = {r["id"] for r in listing.clients if r["manager_id"] == manager}
    for name, value in filter.items():
        if value == []:
            continue  # an empty multi-select means "any"
        if name == "managerIds":
            ids = {int(base64.b64decode(v).decode().split(":")[1]) for v in value}
            checks.append(lambda r, ids=ids: r["manager_id"] in ids)
        elif name == "ownership":
            tests = {
                "OWN": lambda r: r["manager_id"] == manager,
                "OTHERS": lambda r: r["manager_id"] is not None and r["manager_id"] != manager,
                "UNASSIGNED": lambda r: r["manager_id"] is None,
                "OWN_AND_SUB_ACCOUNTS": lambda r: (
                    r["manager_id"] == manager or r["parent_id"] in own_parents
                ),
            }
            checks.append(lambda r, v=value, t=tests: any(t[o](r) for o in v))
        elif name == "blocked":
            checks.append(lambda r, v=value: blocked(r) == v)
        elif name == "statuses":
            checks.append(lambda r, v=value: r["status"].value in v)
        elif name == "countries":
            checks.append(lambda r, v=value: r["country"] in {c.upper() for c in v})
        elif name == "currencies":
            checks.append(lambda r, v=value: r["currency"] in {c.upper() for c in v})
        elif name in ("login", "email"):
            checks.append(lambda r, v=value, n=name: contains(r[n], v))
        elif name == "phone":
            checks.append(lambda r, v=value: r["phone"] is not None and digits(v) in r["phone"])
        elif name == "createdAfter":
            checks.append(lambda r, v=value: r["created_at"] >= datetime.fromisoformat(v))
        elif name == "createdBefore":
            checks.append(lambda r, v=value: r["created_at"] < datetime.fromisoformat(v))
        elif name == "lastActivityAfter":
            checks.append(
                lambda r, v=value: (
                    r["last_activity_at"] is not None
                    and r["last_activity_at"] >= datetime.fromisoformat(v)
                )
            )
        elif name == "lastActivityBefore":
            checks.append(
                lambda r, v=value: (
                    r["last_activity_at"] is not None
                    and r["last_activity_at"] < datetime.fromisoformat(v)
                )
            )
        elif name == "validTillAfter":
            checks.append(
                lambda r, v=value: (
                    r["valid_till"] is not None and r["valid_till"] >= datetime.fromisoformat(v)
                )
            )
        elif name == "validTillBefore":
            checks.append(
                lambda r, v=value: (
                    r["valid_till"] is not None and r["valid_till"] < datetime.fromisoformat(v)
                )
            )
        elif name == "parentId":
            parent = int(base64.b64decode(value).decode().split(":")[1])
            checks.append(lambda r, p=parent: r["parent_id"] == p)
        elif name == "hasParent":
            checks.append(lambda r, v=value: (r["parent_id"] is not None) == v)
        elif name == "balanceBelow":
            checks.append(lambda r, v=value: r["balance"] < Decimal(v))
        elif name == "balanceAbove":
            checks.append(lambda r, v=value: r["balance"] >= Decimal(v))
        elif name == "updatedAfter":
            checks.append(lambda r, v=value: r["updated_at"] >= datetime.fromisoformat(v))
        elif name == "updatedBefore":
            checks.append(lambda r, v=value: r["updated_at"] < datetime.fromisoformat(v))
        elif name == "inactiveSince":
            checks.append(
                lambda r, v=value: (
                    r["last_activity_at"] is None
                    or r["last_activity_at"] < datetime.fromisoformat(v)
                )
            )
        elif name == "neverActive":
            checks.append(lambda r, v=value: (r["last_activity_at"] is None) == v)
        elif name == "hasConnections":
            connected = {c["client_id"] for c in listing.connections}
            checks.append(lambda r, v=value, c=connected: (r["id"] in c) == v)
        elif name == "ids":
            ids = {int(base64.b64decode(v).decode().split(":")[1]) for v in value}
            checks.append(lambda r, ids=ids: r["id"] in ids)
        elif name == "customFields":
            rules = [custom_value_rule(listing, condition) for condition in value]
            checks.append(lambda r, rules=rules: all(rule(r) for rule in rules))
        elif name in ("connectionTypes", "connectionStatus", "connectionMatch"):
            continue
        else:
            raise AssertionError(f"no Python meaning for {name}")
    if filter.get("connectionTypes") or "connectionStatus" in filter:
        checks.append(
            connection_rule(
                listing,
                filter.get("connectionTypes") or None,
                filter.get("connectionStatus"),
                filter.get("connectionMatch"),
            )
        )
    return lambda row: all(check(row) for check in checks)


def python_search(text: str) -> Callable[[Row], bool]:
    wanted = digits(text)
    return lambda r: (
        contains(r["login"], text)
        or contains(r["name"], text)
        or contains(r["email"], text)
        or (len(wanted) >= 3 and r["phone"] is not None and wanted in r["phone"])
    )


def expected(
    listing: Listing,
    filter: dict[str, Any] | None = None,
    search: str | None = None,
    order_by: list[dict[str, str]] | None = None,
) -> list[str]:
    match = python_filter(listing, filter or {})
    found = [
        r for r in listing.clients if match(r) and (search is None or python_search(search)(r))
    ]
    return ordered(found, order_by)


# --- walking the API ---------------------------------------------------------------------


async def walk(
    listing: Listing,
    *,
    size: int,
    filter: dict[str, Any] | None = None,
    search: str | None = None,
    order_by: list[dict[str, str]] | None = None,
    backwards: bool = False,
) -> list[str]:
    """Every login, page by page, checking pageInfo on the way; backwards with last/before."""
    logins: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        variables: dict[str, Any] = {"filter": filter, "search": search, "orderBy": order_by}
        variables.update(
            {"last": size, "before": cursor} if backwards else {"first": size, "after": cursor}
        )
        page = (await listing.api(PAGE, variables))["clients"]
        got = [edge["node"]["login"] for edge in page["edges"]]
        info = page["pageInfo"]
        assert len(got) <= size
        if got:
            assert info["startCursor"] == page["edges"][0]["cursor"]
            assert info["endCursor"] == page["edges"][-1]["cursor"]
        more = info["hasPreviousPage"] if backwards else info["hasNextPage"]
        earlier = info["hasNextPage"] if backwards else info["hasPreviousPage"]
        assert earlier == (pages > 0 and bool(logins))  # exact, not just "unknown"
        logins = got + logins if backwards else logins + got
        pages += 1
        if not more:
            return logins
        assert len(got) == size
        cursor = info["startCursor"] if backwards else info["endCursor"]


# --- filters -----------------------------------------------------------------------------

FILTERS: list[dict[str, Any]] = [
    {"ownership": ["OWN"]},
    {"ownership": ["OTHERS"]},
    {"ownership": ["UNASSIGNED"]},
    {"ownership": ["OWN", "UNASSIGNED"]},
    {"blocked": True},
    {"blocked": False},
    {"statuses": ["INACTIVE"]},
    {"statuses": ["ACTIVE", "INACTIVE"]},
    {"countries": ["de", "JP"]},
    {"currencies": ["EUR", "kwd"]},
    {"login": "acme"},
    {"login": "1"},
    {"email": "EXAMPLE.ORG"},
    {"phone": "+49 (0)151"},
    {"phone": "81"},
    {"connectionTypes": ["SMPP"]},
    {"connectionStatus": "ONLINE"},
    {"connectionTypes": ["HTTP", "WEB"], "connectionStatus": "OFFLINE"},
    {"createdAfter": (NOW - timedelta(days=200)).isoformat()},
    {
        "createdBefore": (NOW - timedelta(days=400)).isoformat(),
        "createdAfter": (NOW - timedelta(days=600)).isoformat(),
    },
    {"lastActivityAfter": (NOW - timedelta(days=7)).isoformat()},
    {"lastActivityBefore": (NOW - timedelta(days=300)).isoformat()},
    {"hasParent": True},
    {"hasParent": False},
    {"balanceBelow": "0"},
    {"balanceAbove": "1000"},
    {"balanceAbove": "-50.5", "balanceBelow": "50.5"},
    {"validTillBefore": NOW.isoformat()},
    {"validTillAfter": (NOW + timedelta(days=100)).isoformat()},
    {"statuses": ["ACTIVE"], "countries": ["US", "GB", "DE"], "blocked": False, "hasParent": False},
    {"statuses": []},  # an empty multi-select means "any"
    # tallied counts: status with one other dimension, every mix of ownerships
    {"statuses": ["ACTIVE"], "ownership": ["OWN"]},
    {"statuses": ["INACTIVE"], "currencies": ["USD", "EUR"]},
    {"ownership": ["OWN", "OTHERS"]},
    {"ownership": ["OTHERS", "UNASSIGNED"]},
    {"ownership": ["OWN", "OTHERS", "UNASSIGNED"], "statuses": ["ACTIVE"]},
    {"hasParent": True, "statuses": ["ACTIVE", "INACTIVE"]},
    {"ownership": ["OWN"], "countries": ["US", "DE"]},  # two dimensions: counted
    # the viewer's clients and their sub-accounts: what a manager may change
    {"ownership": ["OWN_AND_SUB_ACCOUNTS"]},
    {"ownership": ["OWN_AND_SUB_ACCOUNTS"], "statuses": ["ACTIVE"]},
    {"ownership": ["OWN_AND_SUB_ACCOUNTS", "UNASSIGNED"], "hasParent": True},
    {"neverActive": True},
    {"neverActive": False},
    {"inactiveSince": (NOW - timedelta(days=300)).isoformat()},
    {"inactiveSince": (NOW - timedelta(days=30)).isoformat(), "statuses": ["ACTIVE"]},
    {"hasConnections": False},
    {"hasConnections": True, "connectionTypes": ["SMPP"]},
    {"connectionStatus": "ONLINE", "connectionMatch": "ALL"},
    {"connectionStatus": "OFFLINE", "connectionMatch": "ALL"},
    {"connectionStatus": "OFFLINE", "connectionMatch": "ANY"},
    {"connectionTypes": ["HTTP", "WEB"], "connectionStatus": "ONLINE", "connectionMatch": "ALL"},
    {"updatedAfter": (NOW - timedelta(days=200)).isoformat()},
    {
        "updatedAfter": (NOW - timedelta(days=600)).isoformat(),
        "updatedBefore": (NOW - timedelta(days=100)).isoformat(),
    },
    {"customFields": [{"key": "tier", "equals": "gold"}]},
    {"customFields": [{"key": "newsletter", "equals": True}]},
    {"customFields": [{"key": "newsletter", "equals": False}]},
    {"customFields": [{"key": "tier", "isEmpty": True}]},
    {"customFields": [{"key": "tier", "isEmpty": False}, {"key": "vat_number", "contains": "eU1"}]},
    {"customFields": [{"key": "vat_number", "contains": "1"}], "statuses": ["ACTIVE"]},
    {"connectionTypes": [], "statuses": ["ACTIVE"]},  # an empty multi-select: any
]
# conditions no client meets, the same on both databases
EMPTY: list[dict[str, Any]] = [
    {"customFields": [{"key": "newsletter", "contains": "tru"}]},  # text values only
    {"customFields": [{"key": "employees", "contains": "1"}]},
]


@pytest.mark.parametrize("filter", EMPTY)
async def test_conditions_no_client_meets(listing: Listing, filter: dict[str, Any]) -> None:
    assert expected(listing, filter) == []
    assert await walk(listing, size=50, filter=filter) == []


@pytest.mark.parametrize(
    "filter", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items())[:60]
)
async def test_each_filter_matches_python(listing: Listing, filter: dict[str, Any]) -> None:
    want = expected(listing, filter)
    assert await walk(listing, size=40, filter=filter) == want
    total = (await listing.api(COUNT, {"filter": filter}))["clients"]["totalCount"]
    assert total == len(want)


@pytest.mark.parametrize(
    "filter", [{"login": "a_c%'"}, {"email": "o'neil\\"}, {"login": "ACME.M"}, {"phone": "'1'"}]
)
async def test_text_filters_take_any_text_literally(
    listing: Listing, filter: dict[str, Any]
) -> None:
    assert await walk(listing, size=40, filter=filter) == expected(listing, filter)


async def test_filters_find_something(listing: Listing) -> None:
    # the demo data exercises every filter: none of the cases above is vacuous
    empty = [f for f in FILTERS if not expected(listing, f)]
    assert empty == []


async def test_filter_by_manager_and_parent(listing: Listing) -> None:
    acme = next(r for r in listing.clients if r["login"] == "acme")
    by_parent = {"parentId": gid("Client", acme["id"])}
    assert await walk(listing, size=10, filter=by_parent) == expected(listing, by_parent)
    assert "acme.marketing" in expected(listing, by_parent)
    by_manager = {"managerIds": [gid("StaffUser", listing.manager_id)]}
    assert await walk(listing, size=50, filter=by_manager) == expected(listing, by_manager)
    # an ID of another type matches nothing (it is not "any manager")
    wrong_type = {"managerIds": [gid("Client", listing.manager_id)]}
    assert await walk(listing, size=50, filter=wrong_type) == []


@pytest.mark.parametrize(
    "search",
    [
        "acme",
        "EXAMPLE.NET",
        "müller",
        "4915",
        "no-such-thing",
        "al-sabah",
        # written into the SQL as literals: quotes, escapes and wildcards stay text
        "o'neil",
        "100%",
        "a_b",
        "back\\slash",
        "'; DROP TABLE clients; --",
    ],
)
async def test_search_matches_login_name_email_or_phone(listing: Listing, search: str) -> None:
    assert await walk(listing, size=50, search=search) == expected(listing, search=search)


async def test_ownership_is_relative_to_the_viewer(listing: Listing) -> None:
    own = {"ownership": ["OWN"]}
    as_manager = await listing.api(COUNT, {"filter": own}, token=listing.manager_token)
    as_admin = await listing.api(COUNT, {"filter": own}, token=listing.admin_token)
    assert as_manager["clients"]["totalCount"] == len(expected(listing, own)) > 0
    assert as_admin["clients"]["totalCount"] == 0  # the demo admin manages nobody


# --- sorting -----------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("field", list(SORT_COLUMNS))
async def test_each_sort_matches_python(listing: Listing, field: str, direction: str) -> None:
    order_by = [{"field": field, "direction": direction}]
    assert await walk(listing, size=45, order_by=order_by) == expected(listing, order_by=order_by)


@pytest.mark.parametrize(
    "order_by",
    [
        [{"field": "COUNTRY"}, {"field": "BALANCE", "direction": "DESC"}],
        [
            {"field": "STATUS", "direction": "DESC"},
            {"field": "NAME"},
            {"field": "LAST_ACTIVITY_AT", "direction": "DESC"},
        ],
        [{"field": "CURRENCY", "direction": "DESC"}, {"field": "VALID_TILL"}],
        [{"field": "MANAGER"}, {"field": "BLOCKED", "direction": "DESC"}],
        [{"field": "BLOCKED", "direction": "DESC"}, {"field": "PHONE"}],
        [{"field": "CHATS", "direction": "DESC"}, {"field": "MANAGER", "direction": "DESC"}],
        [{"field": "BALANCE", "direction": "DESC"}, {"field": "CURRENCY"}],
        [{"field": "UPDATED_AT"}, {"field": "SUPPORT_REQUESTS", "direction": "DESC"}],
        [{"field": "CAN_LOGIN"}, {"field": "NAME", "direction": "DESC"}],
        [{"field": "CAN_LOGIN", "direction": "DESC"}, {"field": "BALANCE"}],
        [{"field": "COUNTRY"}, {"field": "CAN_LOGIN", "direction": "DESC"}],
    ],
)
async def test_multi_column_sort(listing: Listing, order_by: list[dict[str, str]]) -> None:
    want = expected(listing, order_by=order_by)
    assert await walk(listing, size=30, order_by=order_by) == want
    assert await walk(listing, size=30, order_by=order_by, backwards=True) == want


async def test_balance_never_compares_amounts_in_different_currencies(listing: Listing) -> None:
    # given clients in several currencies
    assert len({r["currency"] for r in listing.clients}) > 2
    for direction in ("ASC", "DESC"):
        order_by = [{"field": "BALANCE", "direction": direction}]
        # when sorted by balance
        logins = await walk(listing, size=50, order_by=order_by)
        # then each currency's clients come together, in amount order within it
        rows = {r["login"]: r for r in listing.clients}
        currencies = [rows[login]["currency"] for login in logins]
        runs = [c for n, c in enumerate(currencies) if n == 0 or currencies[n - 1] != c]
        assert len(runs) == len(set(currencies))
        amounts = [rows[login]["balance"] for login in logins if rows[login]["currency"] == "EUR"]
        assert amounts == sorted(amounts, reverse=direction == "DESC")
    # and with one currency chosen, the order is the amounts'
    only_eur = {"currencies": ["EUR"]}
    order_by = [{"field": "BALANCE"}]
    logins = await walk(listing, size=50, filter=only_eur, order_by=order_by)
    assert logins == expected(listing, only_eur, order_by=[{"field": "BALANCE"}])


async def test_the_managers_name_on_each_client_is_the_staff_tables(listing: Listing) -> None:
    assert [r["manager_name"] for r in listing.clients] == [r["manager"] for r in listing.clients]
    assert {r["manager"] for r in listing.clients} - {None}  # some clients have a manager


async def test_default_order_is_newest_first(listing: Listing) -> None:
    page = (await listing.api(PAGE, {"first": 5}))["clients"]
    assert [e["node"]["login"] for e in page["edges"]] == expected(listing)[:5]


# --- pages -------------------------------------------------------------------------------


async def test_pages_walk_both_ways_with_nulls_in_the_middle_of_a_page(listing: Listing) -> None:
    # valid_till is empty for most clients: pages cross from values into NULLs
    for field in ("VALID_TILL", "EMAIL"):
        for direction in ("ASC", "DESC"):
            order_by = [{"field": field, "direction": direction}]
            want = expected(listing, order_by=order_by)
            assert await walk(listing, size=17, order_by=order_by) == want
            assert await walk(listing, size=17, order_by=order_by, backwards=True) == want


async def test_page_info_is_exact_from_a_cursor_in_the_middle(listing: Listing) -> None:
    first = (await listing.api(PAGE, {"first": 10}))["clients"]
    middle = first["edges"][4]["cursor"]
    forward = (await listing.api(PAGE, {"first": 3, "after": middle}))["clients"]
    assert forward["pageInfo"]["hasPreviousPage"] is True
    assert [e["node"]["login"] for e in forward["edges"]] == expected(listing)[5:8]
    backward = (await listing.api(PAGE, {"last": 3, "before": middle}))["clients"]
    assert backward["pageInfo"]["hasNextPage"] is True
    assert backward["pageInfo"]["hasPreviousPage"] is True
    assert [e["node"]["login"] for e in backward["edges"]] == expected(listing)[1:4]
    # both bounds: what lies between them
    end = first["edges"][9]["cursor"]
    between = (await listing.api(PAGE, {"first": 10, "after": middle, "before": end}))["clients"]
    assert [e["node"]["login"] for e in between["edges"]] == expected(listing)[5:9]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_can_login_pages_between_two_cursors_and_from_the_far_side(
    listing: Listing, direction: str
) -> None:
    # given cursors on both sides of where those who can log in meet those who cannot
    order_by = [{"field": "CAN_LOGIN", "direction": direction}]
    want = expected(listing, order_by=order_by)
    rows = {r["login"]: r for r in listing.clients}
    edge = next(
        n for n in range(1, len(want)) if can_login(rows[want[n]]) != can_login(rows[want[0]])
    )
    edges: list[dict[str, Any]] = []
    while len(edges) < edge + 5:
        after = edges[-1]["cursor"] if edges else None
        variables = {"orderBy": order_by, "first": 100, "after": after}
        edges += (await listing.api(PAGE, variables))["clients"]["edges"]
    start, end = edges[edge - 5]["cursor"], edges[edge + 4]["cursor"]
    # when paged between them, and backwards from one with `after` only
    between = {"orderBy": order_by, "first": 20, "after": start, "before": end}
    tail = {"orderBy": order_by, "last": 4, "after": start}
    got = (await listing.api(PAGE, between))["clients"]["edges"]
    last = (await listing.api(PAGE, tail))["clients"]["edges"]
    # then each is that stretch of the whole order
    assert [e["node"]["login"] for e in got] == want[edge - 4 : edge + 4]
    assert [e["node"]["login"] for e in last] == want[-4:]


def counts(listing: Listing) -> list[str]:
    """The statements that counted: a COUNT, or a sum over the tallies (not a page whose
    search counts a sample on SQLite, db/search.py)."""
    return [
        sql
        for sql, _ in listing.statements
        if ("count(" in sql.lower() and "search_walk" not in sql) or "client_tallies" in sql
    ]


async def test_total_count_is_counted_only_when_asked(listing: Listing) -> None:
    listing.statements.clear()
    await listing.api(PAGE, {"first": 5})
    assert counts(listing) == []
    listing.statements.clear()
    data = await listing.api(COUNT, {})
    assert data["clients"]["totalCount"] == len(listing.clients)
    assert len(counts(listing)) == 1


@pytest.mark.parametrize(
    ("filter", "search", "tallied"),
    [
        (None, None, True),
        ({"statuses": ["ACTIVE"]}, None, True),
        ({"statuses": ["ACTIVE"], "ownership": ["OWN"]}, None, True),
        ({"managerIds": [gid("StaffUser", 2)], "ownership": ["OTHERS"]}, None, True),
        ({"countries": ["DE"], "statuses": ["INACTIVE"]}, None, True),
        ({"hasParent": False}, None, True),
        ({"countries": ["DE"], "currencies": ["EUR"]}, None, False),
        ({"connectionTypes": ["SMPP"], "statuses": ["ACTIVE"]}, None, True),
        ({"connectionTypes": ["SMPP", "WEB"]}, None, False),  # both types: counted once
        ({"connectionTypes": ["SMPP"], "connectionStatus": "ONLINE"}, None, False),
        ({"statuses": ["ACTIVE"], "blocked": False}, None, False),
        ({"statuses": ["ACTIVE"]}, "acme", False),
        ({"connectionStatus": "ONLINE"}, None, False),
    ],
)
async def test_common_filters_are_counted_from_tallies(
    listing: Listing, filter: dict[str, Any] | None, search: str | None, tallied: bool
) -> None:
    # given a filter that the tallies can answer (status and one other dimension), or not
    listing.statements.clear()
    # when the total is asked for
    data = await listing.api(COUNT, {"filter": filter, "search": search})
    # then it is exact either way, and only the others count rows
    assert data["clients"]["totalCount"] == len(expected(listing, filter, search))
    [statement] = counts(listing)
    assert ("client_tallies" in statement) == tallied
    assert ("FROM clients" not in statement) == tallied


async def test_no_offset_anywhere(listing: Listing) -> None:
    listing.statements.clear()
    await walk(listing, size=40, order_by=[{"field": "NAME", "direction": "DESC"}])
    pages = [(sql, params) for sql, params in listing.statements if "FROM clients" in sql]
    assert len(pages) >= 6
    for sql, params in pages:
        # SQLAlchemy writes "LIMIT 41 OFFSET ?" for SQLite with the offset always 0
        if " OFFSET " in sql:
            assert re.search(r"LIMIT \d+ OFFSET \?$", sql.rstrip())
            assert params[-1] == 0


# --- refused input -----------------------------------------------------------------------


def other_cursor() -> str:
    raw = b'["LOGIN:ASC",["acme"],1]'
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 5, "last": 5}, "Give `first` or `last`, not both."),
        ({"first": 0}, "`first` must be between 1 and 100."),
        ({"first": 101}, "`first` must be between 1 and 100."),
        ({"last": 1000}, "`last` must be between 1 and 100."),
        ({"after": "not a cursor"}, "`after` is not a valid cursor."),
        (
            {"before": base64.urlsafe_b64encode(b"[1,2]").decode()},
            "`before` is not a valid cursor.",
        ),
        ({"after": other_cursor()}, "`after` is a cursor of another ordering"),
        ({"orderBy": [{"field": "NAME"}, {"field": "NAME", "direction": "DESC"}]}, "only once"),
        ({"filter": {"countries": ["DE", "XX"]}}, "'XX' is not an ISO 3166-1 country code"),
        ({"filter": {"currencies": ["EURO"]}}, "'EURO' is not an ISO 4217 currency in use"),
        ({"filter": {"phone": "call me"}}, "`filter.phone` needs at least one digit."),
        (
            {"filter": {"balanceAbove": "10", "balanceBelow": "5"}},
            "`filter.balanceAbove` must be below `filter.balanceBelow`.",
        ),
        (
            {"filter": {"createdAfter": NOW.isoformat(), "createdBefore": NOW.isoformat()}},
            "`filter.createdAfter` must be below",
        ),
        ({"filter": {"managerIds": ["%%%"]}}, "is not a valid ID"),
        ({"search": "x" * 101}, "`search` is longer than 100 characters."),
        ({"filter": {"balanceBelow": 5}}, "Decimal values are strings"),
        (
            {"filter": {"updatedAfter": NOW.isoformat(), "updatedBefore": NOW.isoformat()}},
            "`filter.updatedAfter` must be below",
        ),
        ({"filter": {"ids": [gid("Client", n) for n in range(1, 502)]}}, "at most 500 IDs"),
        (
            {"filter": {"customFields": [{"key": "tier", "equals": "gold", "isEmpty": True}]}},
            "Give exactly one of `equals`, `contains` and `isEmpty`.",
        ),
        (
            {"filter": {"customFields": [{"key": "tier"}]}},
            "Give exactly one of `equals`, `contains` and `isEmpty`.",
        ),
        (
            {"filter": {"customFields": [{"key": "tier", "equals": {"a": 1}}]}},
            "`equals` takes a string, a number or a boolean.",
        ),
        (
            {"filter": {"customFields": [{"key": "tier", "equals": ["gold"]}]}},
            "`equals` takes a string, a number or a boolean.",
        ),
        (
            {"filter": {"customFields": [{"key": "k", "isEmpty": True}] * 11}},
            "takes at most 10 conditions",
        ),
        (
            {"filter": {"customFields": [{"key": "vat_number", "contains": "x" * 101}]}},
            "longer than 100 characters",
        ),
    ],
)
async def test_bad_arguments_are_clear_errors(
    listing: Listing, variables: dict[str, Any], message: str
) -> None:
    errors = await listing.api.errors(PAGE, variables)
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    assert message in errors[0]["message"]


@pytest.mark.parametrize(
    "key", ["vat_number", "employees", "newsletter", "contract_signed", "tier"]
)
async def test_custom_field_equals_a_value_of_its_type(listing: Listing, key: str) -> None:
    # given a value some client holds for the field
    held = sorted((value for (_, k), value in listing.custom_values.items() if k == key), key=str)
    value = held[len(held) // 2]
    for filter in (
        {"customFields": [{"key": key, "equals": value}]},
        {"customFields": [{"key": key, "isEmpty": False}]},
    ):
        # when the list is filtered by it, then it has exactly the clients Python finds
        want = expected(listing, filter)
        assert want
        assert await walk(listing, size=60, filter=filter) == want
    # and a value of another type matches nothing (a number's text is not the number)
    other = str(value) if not isinstance(value, str) else 0
    assert (
        await walk(listing, size=60, filter={"customFields": [{"key": key, "equals": other}]}) == []
    )


async def test_unknown_custom_field_holds_no_value(listing: Listing) -> None:
    empty = {"customFields": [{"key": "no-such-field", "isEmpty": True}]}
    held = {"customFields": [{"key": "no-such-field", "isEmpty": False}]}
    assert len(await walk(listing, size=100, filter=empty)) == len(listing.clients)
    assert await walk(listing, size=100, filter=held) == []


async def test_own_and_sub_accounts_is_what_a_manager_may_change(listing: Listing) -> None:
    # given the manager's clients and their sub-accounts (test_clients_ownership.py has
    # sub-accounts that others manage)
    mine = set(await walk(listing, size=100, filter={"ownership": ["OWN_AND_SUB_ACCOUNTS"]}))
    assert set(expected(listing, {"ownership": ["OWN"]})) <= mine
    # then they are exactly the clients the rule for changes lets the manager change
    async with create_sessionmaker(listing.engine)() as session:
        clients = list((await session.scalars(select(Client))).all())
        actor = Actor(staff_id=listing.manager_id, email="m@x", role=StaffRole.MANAGER, now=NOW)
        allowed = await may_change(session, actor, clients)
    assert mine == {c.login for c, ok in zip(clients, allowed, strict=True) if ok}


async def test_every_filter_problem_is_reported_at_once(listing: Listing) -> None:
    # given a filter with values no scalar can read and values no client can match
    variables = {
        "filter": {
            "countries": ["DE", "XX", "YY"],
            "currencies": ["EURO"],
            "phone": "call me",
            "balanceBelow": "NaN",
            "statuses": ["ASLEEP"],
            "createdAfter": NOW.isoformat(),
            "createdBefore": NOW.isoformat(),
        },
        "search": "x" * 101,
    }
    # when
    errors = await listing.api.errors(PAGE, variables)
    # then one error lists them all, each on its path
    assert error_codes(errors) == ["BAD_USER_INPUT"]
    problems = errors[0]["extensions"]["problems"]
    assert [(p["field"], p["code"]) for p in problems] == [
        (["filter", "statuses", "0"], "INVALID_CHOICE"),
        (["filter", "balanceBelow"], "INVALID_AMOUNT"),
        (["filter", "createdAfter"], "OUT_OF_RANGE"),
        (["filter", "countries", "1"], "INVALID_COUNTRY"),
        (["filter", "countries", "2"], "INVALID_COUNTRY"),
        (["filter", "currencies", "0"], "INVALID_CURRENCY"),
        (["filter", "phone"], "INVALID"),
        (["search"], "TOO_LONG"),
    ]
    assert errors[0]["message"].startswith("8 invalid argument values: `filter.statuses.0`")


async def test_cursor_values_cannot_smuggle_types(listing: Listing) -> None:
    raw = b'["CREATED_AT:DESC",["not a date"],1]'
    cursor = base64.urlsafe_b64encode(raw).decode()
    errors = await listing.api.errors(PAGE, {"after": cursor})
    assert error_codes(errors) == ["BAD_USER_INPUT"]


# --- statistics --------------------------------------------------------------------------

STATS = """
query($filter: ClientFilter, $search: String) {
  clientStats(filter: $filter, search: $search) {
    total activeLast7Days blocked inactive chats supportRequests balances { amount currency }
  }
}
"""


@pytest.mark.parametrize("filter", [None, {"countries": ["DE", "FR"]}, {"blocked": True}])
async def test_client_stats_match_python(listing: Listing, filter: dict[str, Any] | None) -> None:
    match = python_filter(listing, filter or {})
    rows = [r for r in listing.clients if match(r)]
    stats = (await listing.api(STATS, {"filter": filter}))["clientStats"]
    assert stats["total"] == len(rows)
    week_ago = NOW - timedelta(days=7)
    assert stats["activeLast7Days"] == sum(
        1 for r in rows if r["last_activity_at"] and r["last_activity_at"] >= week_ago
    )
    assert stats["blocked"] == sum(1 for r in rows if blocked(r))
    assert stats["inactive"] == sum(1 for r in rows if r["status"].value == "INACTIVE")
    assert stats["chats"] == sum(r["chats_count"] for r in rows)
    assert stats["supportRequests"] == sum(r["support_requests_count"] for r in rows)
    sums: dict[str, Decimal] = {}
    for r in rows:
        sums[r["currency"]] = sums.get(r["currency"], Decimal(0)) + r["balance"]
    assert {b["currency"]: Decimal(b["amount"]) for b in stats["balances"]} == sums
    assert [b["currency"] for b in stats["balances"]] == sorted(sums)
