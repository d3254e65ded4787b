"""The workloads of the side-by-side benchmark, as each system is asked them.

Every read workload is the admin table's list page: ACTIVE clients newest first (or a search),
with login, name, e-mail, status, creation time, balance and the manager's name. Clientdesk
is asked in its API, PostGraphile 5 in the schema it derives from the same tables (Amber
preset with the connection-filter plugin), the floor (bench/floor.py) by path. `rows` takes the
list of logins out of each system's answer, so a run can check that all return the same page.
"""

from dataclasses import dataclass, field
from typing import Any

CLIENTDESK, POSTGRAPHILE, FLOOR = "clientdesk", "postgraphile", "floor"
# PostGraphile 5 in as many Node processes as Clientdesk has workers (bench/peer/cluster.mjs),
# asked exactly what the single process is asked.
POSTGRAPHILE_N = "postgraphile-n"
PEERS = (POSTGRAPHILE, POSTGRAPHILE_N)

NODE_FIELDS = "id login name email status createdAt balance { amount currency } manager { name }"
PG_NODE_FIELDS = (
    "id login name email status createdAt balance currency staffUserByManagerId { name }"
)
PG_ORDER = "orderBy: [CREATED_AT_DESC, ROW_ID_DESC]"


def _list(arguments: str, *, count: bool) -> str:
    total = "totalCount " if count else ""
    return (
        "query List($first: Int!, $after: String, $search: String) { "
        f"clients({arguments}first: $first, after: $after, search: $search) {{ {total}"
        f"pageInfo {{ hasNextPage endCursor }} nodes {{ {NODE_FIELDS} }} }} }}"
    )


def _pg_list(arguments: str, *, count: bool, cursor: bool = False, search: bool = False) -> str:
    total = "totalCount " if count else ""
    variables = "$first: Int!" + (", $after: Cursor" if cursor else "")
    variables += ", $term: String!" if search else ""
    after = "after: $after, " if cursor else ""
    return (
        f"query List({variables}) {{ "
        f"allClients({arguments}{PG_ORDER}, {after}first: $first) {{ {total}"
        f"pageInfo {{ hasNextPage endCursor }} nodes {{ {PG_NODE_FIELDS} }} }} }}"
    )


ACTIVE = "filter: {statuses: [ACTIVE]}, "
PG_ACTIVE = 'condition: {status: "ACTIVE"}, '
PG_SEARCH = (
    "filter: {or: [{login: {includesInsensitive: $term}}, {name: {includesInsensitive: $term}}, "
    "{email: {includesInsensitive: $term}}]}, "
)


@dataclass(frozen=True)
class Request:
    """One system's request for a workload: path and JSON body."""

    path: str
    body: dict[str, Any]


@dataclass
class Workload:
    """A workload and how each system is asked it."""

    name: str
    title: str
    requests: dict[str, Request] = field(default_factory=dict)


def page_rows(system: str, answer: dict[str, Any]) -> list[str]:
    """The logins of the page in an answer, in order."""
    data = answer["data"]
    nodes = data["allClients"]["nodes"] if system in PEERS else data["clients"]["nodes"]
    return [node["login"] for node in nodes]


def total(system: str, answer: dict[str, Any]) -> int | None:
    data = answer["data"]
    connection = data["allClients"] if system in PEERS else data["clients"]
    value = connection.get("totalCount")
    return None if value is None else int(value)


def read_workloads(
    *,
    deep: dict[str, Any],
    depth: int,
    common: str,
    rare: str,
) -> list[Workload]:
    """W1, W1nc, W2, W3 and W3r. `deep` holds each system's cursor for the row `depth` rows
    down the list (W2); `common` and `rare` are the search terms of W3 and W3r."""
    first = {"first": 50}
    workloads = [
        Workload(
            name,
            title,
            {
                CLIENTDESK: Request(
                    "/graphql", {"query": _list(ACTIVE, count=count), "variables": first}
                ),
                POSTGRAPHILE: Request(
                    "/graphql", {"query": _pg_list(PG_ACTIVE, count=count), "variables": first}
                ),
                FLOOR: Request("/" + name.lower(), {"variables": first}),
            },
        )
        for name, title, count in (
            (
                "W1",
                "50 ACTIVE clients newest first, with manager name and balance, plus totalCount",
                True,
            ),
            ("W1nc", "W1 without totalCount", False),
        )
    ]
    workloads += [
        Workload(
            "W2",
            f"W1nc {depth:,} rows deep by cursor",
            {
                CLIENTDESK: Request(
                    "/graphql",
                    {
                        "query": _list(ACTIVE, count=False),
                        "variables": {**first, "after": deep[CLIENTDESK]},
                    },
                ),
                POSTGRAPHILE: Request(
                    "/graphql",
                    {
                        "query": _pg_list(PG_ACTIVE, count=False, cursor=True),
                        "variables": {**first, "after": deep[POSTGRAPHILE]},
                    },
                ),
                FLOOR: Request("/w2", {"variables": {**first, "after": deep[FLOOR]}}),
            },
        ),
    ]
    for name, term, what in (("W3", common, "a common text"), ("W3r", rare, "a rare text")):
        workloads.append(
            Workload(
                name,
                f'login, name or e-mail contains "{term}" ({what}), first 20',
                {
                    CLIENTDESK: Request(
                        "/graphql",
                        {
                            "query": _list("", count=False),
                            "variables": {"first": 20, "search": term},
                        },
                    ),
                    POSTGRAPHILE: Request(
                        "/graphql",
                        {
                            "query": _pg_list(PG_SEARCH, count=False, search=True),
                            "variables": {"first": 20, "term": term},
                        },
                    ),
                    FLOOR: Request(
                        "/" + name.lower(), {"variables": {"first": 20, "search": term}}
                    ),
                },
            )
        )
    for workload in workloads:  # the N-process peer is asked what the single one is
        workload.requests[POSTGRAPHILE_N] = workload.requests[POSTGRAPHILE]
    return workloads


CREDIT_ADD = (
    "mutation Pay($input: CreditAddInput!) { creditAdd(input: $input) { "
    "entry { id amount { amount } balanceAfter { amount } } replayed userErrors { code } } }"
)


def credit_add_template() -> str:
    """W4's body, with @CLIENT@ (a client's global ID) and @KEY@ (an idempotency key) for wrk
    to fill in per request."""
    return (
        '{"query": "'
        + CREDIT_ADD.replace('"', '\\"')
        + '", "variables": {"input": {"clientId": "@CLIENT@", "amount": "1.00", '
        '"paymentMethod": "BANK_TRANSFER", "comment": "bench", "idempotencyKey": "@KEY@"}}}'
    )


# The general path (issue 17): single reads that are not the list page, asked of Clientdesk
# only (bench/general.py). The card is what the back office shows for one client: ~30 of its
# fields, its manager and parent, its 20 newest ledger entries and its first sub-accounts.
CARD_CLIENT_FIELDS = (
    "id login name email phone country currency language effectiveLanguage status blocked "
    "canLogin balance { amount currency } creditLimit { amount currency } validTill moderation "
    "avatarUrl priceAdjustmentPercent lastActivityAt chatsCount supportRequestsCount createdAt "
    "updatedAt"
)
CARD_ENTRY_FIELDS = (
    "id kind amount { amount currency } balanceAfter { amount currency } paymentMethod "
    "paymentReference comment validTillSet createdAt createdBy { id name }"
)
CARD = (
    "query Card($id: ID!) { client(id: $id) { "
    f"{CARD_CLIENT_FIELDS} manager {{ id name email }} parent {{ id login name }} "
    "creditEntries(first: 20) { totalCount pageInfo { hasNextPage endCursor } "
    f"nodes {{ {CARD_ENTRY_FIELDS} }} }} "
    "subAccounts(first: 10) { pageInfo { hasNextPage } "
    "nodes { id login name status balance { amount currency } } } } }"
)


def general_workloads(client_id: str) -> dict[str, dict[str, Any]]:
    """The general-path requests, by name, for the client with global ID `client_id`."""
    return {
        "typename": {"query": "{ __typename }"},
        "viewer": {"query": "{ viewer { id } }"},
        "client_login_name": {
            "query": "query L($id: ID!) { client(id: $id) { login name } }",
            "variables": {"id": client_id},
        },
        "card": {"query": CARD, "variables": {"id": client_id}},
    }
