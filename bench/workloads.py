"""The workloads of the side-by-side benchmark, as each system is asked them.

Every read workload is the admin table's list page: ACTIVE clients newest first (or a search),
with login, name, e-mail, status, creation time, balance and the manager's name. Clientdesk
is asked in its API, PostGraphile 5 in the schema it derives from the same tables (Amber
preset with the connection-filter plugin), the floor (bench/floor.py) by path. `rows` takes the
list of logins out of each system's answer, so a run can check that all return the same page.
"""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
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


def list_page() -> dict[str, Any]:
    """W1nc's body as Clientdesk is asked it (the list page of W5's mix)."""
    return {"query": _list(ACTIVE, count=False), "variables": {"first": 50}}


@dataclass(frozen=True)
class Request:
    """One system's request for a workload: path and JSON body."""

    path: str
    body: dict[str, Any]


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


@dataclass
class Workload:
    """A workload, how each system is asked it, and how to take the rows (and the total, if
    asked) out of each system's answer, to check that all return the same."""

    name: str
    title: str
    requests: dict[str, Request] = field(default_factory=dict)
    rows: Callable[[str, dict[str, Any]], list[str]] = page_rows
    total: Callable[[str, dict[str, Any]], int | None] = total


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


def _template(query: str, variables: dict[str, Any]) -> str:
    """A body on one line for bench/wrk/post.lua, whose "@CLIENT@" (a client's global ID) and
    "@KEY@" (a unique key) wrk fills in per request."""
    return json.dumps({"query": query, "variables": variables})


def credit_add_template() -> str:
    """W4's body: a payment of 1.00 with a new idempotency key."""
    return _template(
        CREDIT_ADD,
        {
            "input": {
                "clientId": "@CLIENT@",
                "amount": "1.00",
                "paymentMethod": "BANK_TRANSFER",
                "comment": "bench",
                "idempotencyKey": "@KEY@",
            }
        },
    )


CREDIT_DEDUCT = (
    "mutation Deduct($input: CreditDeductInput!) { creditDeduct(input: $input) { "
    "entry { id amount { amount } balanceAfter { amount } } replayed userErrors { code } } }"
)
CREDIT_NOTE = (
    "mutation Note($input: CreditNoteCreateInput!) { creditNoteCreate(input: $input) { "
    "entry { id amount { amount } balanceAfter { amount } } replayed userErrors { code } } }"
)
CLIENT_UPDATE = (
    "mutation Rename($id: ID!, $input: ClientUpdateInput!) { clientUpdate(id: $id, input: $input) "
    "{ client { id name updatedAt } userErrors { code } } }"
)


def money_templates() -> dict[str, str]:
    """The money mutations, by field, each moving a client's balance by a small whole amount
    (whole: some currencies have no minor unit) with a new idempotency key: W4 is `creditAdd`;
    the others are measured the same way beside it."""
    return {
        "creditAdd": credit_add_template(),
        "creditDeduct": _template(
            CREDIT_DEDUCT,
            {
                "input": {
                    "clientId": "@CLIENT@",
                    "amount": "1",
                    "reason": "bench",
                    "idempotencyKey": "@KEY@",
                }
            },
        ),
        "creditNoteCreate": _template(
            CREDIT_NOTE,
            {
                "input": {
                    "clientId": "@CLIENT@",
                    "lines": [
                        {"description": "hosting", "quantity": 2, "unitAmount": "2"},
                        {"description": "discount", "quantity": 1, "unitAmount": "-1"},
                    ],
                    "comment": "bench",
                    "idempotencyKey": "@KEY@",
                }
            },
        ),
    }


def mixed_templates(list_body: dict[str, Any]) -> list[str]:
    """W5, the mix a back office sends, taken in turn: half reads (the list page, the client
    card twice), half writes (a payment, a deduction, a rename)."""
    money = money_templates()
    card = _template(CARD, {"id": "@CLIENT@"})
    rename = _template(CLIENT_UPDATE, {"id": "@CLIENT@", "input": {"name": "Bench @KEY@"}})
    return [
        json.dumps(list_body),
        money["creditAdd"],
        card,
        money["creditDeduct"],
        card,
        rename,
    ]


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
        "list": list_page(),
    }


# The card side by side (bench/run.py): the same client, manager, parent, 20 newest ledger
# entries (with who wrote them) and first 10 sub-accounts, asked of PostGraphile in its own
# schema. Its client fields are the columns behind ours: a field Clientdesk derives
# (effectiveLanguage, blocked, canLogin) is asked as the columns it is derived from. Ledger
# entries have no foreign key to clients (a deleted client's entries stay): the relation is
# declared to PostGraphile by a smart tag in bench/peer/graphile.config.mjs.
PG_CARD = (
    "query Card($id: BigInt!) { clientByRowId(rowId: $id) { "
    "id rowId login name email phone country currency language status blockReason blockedAt "
    "blockedUntil balance creditLimit validTill moderation avatarUrl priceAdjustmentPercent "
    "lastActivityAt chatsCount supportRequestsCount createdAt updatedAt "
    "staffUserByManagerId { id name email } clientByParentId { id login name } "
    "creditEntries(first: 20, orderBy: ROW_ID_DESC) { totalCount "
    "pageInfo { hasNextPage endCursor } nodes { id rowId kind amount currency balanceAfter "
    "paymentMethod paymentReference comment validTillSet createdAt "
    "staffUserByCreatedById { id name } } } "
    "clientsByParentId(first: 10, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) { "
    "pageInfo { hasNextPage } nodes { id rowId login name status balance currency } } } }"
)


def _pk(global_id: str) -> int:
    """The primary key inside one of Clientdesk's global IDs (base64 of "Type:pk")."""
    return int(base64.b64decode(global_id).decode().split(":")[1])


def card_rows(system: str, answer: dict[str, Any]) -> list[str]:
    """The card as rows: the client, its manager and parent, each ledger entry (id, balance
    after, author) and each sub-account, in order."""
    if system in PEERS:
        card = answer["data"]["clientByRowId"]
        manager, parent = card["staffUserByManagerId"], card["clientByParentId"]
        entries = [
            (e["rowId"], e["balanceAfter"], (e["staffUserByCreatedById"] or {}).get("name"))
            for e in card["creditEntries"]["nodes"]
        ]
        subs = [s["login"] for s in card["clientsByParentId"]["nodes"]]
    else:
        card = answer["data"]["client"]
        manager, parent = card["manager"], card["parent"]
        entries = [
            (_pk(e["id"]), e["balanceAfter"]["amount"], (e["createdBy"] or {}).get("name"))
            for e in card["creditEntries"]["nodes"]
        ]
        subs = [s["login"] for s in card["subAccounts"]["nodes"]]
    return [
        f"client {card['login']}",
        f"manager {manager and manager['name']}",
        f"parent {parent and parent['login']}",
        *(  # amounts as numbers: PostGraphile gives the column's scale (4), we give 2
            f"entry {pk} {Decimal(balance).normalize()} by {author}"
            for pk, balance, author in entries
        ),
        *(f"sub-account {login}" for login in subs),
    ]


def card_total(system: str, answer: dict[str, Any]) -> int | None:
    """The card's count of ledger entries."""
    if system in PEERS:
        return int(answer["data"]["clientByRowId"]["creditEntries"]["totalCount"])
    return int(answer["data"]["client"]["creditEntries"]["totalCount"])


def card_workload(pk: int, client_id: str) -> Workload:
    """The client card of client `pk` (global ID `client_id`), Clientdesk against PostGraphile
    (one process and N): the floor has no card."""
    peer = Request("/graphql", {"query": PG_CARD, "variables": {"id": str(pk)}})
    return Workload(
        "card",
        "the client card: one client by id with ~25 fields, its manager and parent, its 20 "
        "newest ledger entries (with their authors, and the count) and its first 10 sub-accounts",
        {
            CLIENTDESK: Request("/graphql", {"query": CARD, "variables": {"id": client_id}}),
            POSTGRAPHILE: peer,
            POSTGRAPHILE_N: peer,
        },
        rows=card_rows,
        total=card_total,
    )
