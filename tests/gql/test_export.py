"""CSV export: the clients list as `clients` answers it (same filter, search and order),
read back with Python's csv module; formula-like cells neutralised; money with its currency
and times in ISO 8601; bad arguments refused before a row is read; a client's ledger."""

import csv
import io
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import ClientStatus, Scope, StaffRole
from gql import export
from tests.api import GraphQLClient
from tests.factories import Factory
from tests.gql.test_client_mutations import gid
from tests.gql.test_credits import add, deduct

LIST = """
query($filter: ClientFilter, $search: String, $orderBy: [ClientOrder!], $after: String) {
  clients(filter: $filter, search: $search, orderBy: $orderBy, first: 100, after: $after) {
    nodes { id login name email phone status createdAt
            balance { amount currency } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def export_clients(
    http: httpx.AsyncClient, token: str, arguments: dict[str, Any]
) -> httpx.Response:
    return await http.post(
        "/export/clients.csv", json=arguments, headers={"Authorization": f"Bearer {token}"}
    )


async def listed(api: GraphQLClient, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await api(LIST, {**arguments, "after": after}))["clients"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


@pytest.fixture
async def people(factory: Factory, session: AsyncSession) -> None:
    await factory.client(login="anna", name="Anna", balance=Decimal("12.5"))
    await factory.client(login="bert", name='=HYPERLINK("http://x")', phone="+4930123456")
    await factory.client(login="carl", name="@SUM(A1)", status=ClientStatus.INACTIVE)
    await factory.client(login="dora", name="-2+3", balance=Decimal("-7"), credit_limit=Decimal(9))
    await factory.client(login="emil", name='Emil "the, quoted"\nsecond line')
    await factory.client(login="yen", name="Yen", currency="JPY", balance=Decimal("1500"))
    await session.commit()


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"orderBy": [{"field": "BALANCE", "direction": "DESC"}]},
        {"orderBy": [{"field": "NAME"}, {"field": "LOGIN", "direction": "DESC"}]},
        {"filter": {"statuses": ["ACTIVE"]}, "orderBy": [{"field": "LOGIN"}]},
        {"search": "e", "orderBy": [{"field": "CREATED_AT"}]},
    ],
)
async def test_the_csv_is_the_list(
    api: GraphQLClient,
    http: httpx.AsyncClient,
    factory: Factory,
    people: None,
    arguments: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export, "PAGE", 2)  # several keyset pages
    api.token = token = await factory.admin_token()
    expected = await listed(api, arguments)
    columns = ["ID", "LOGIN", "EMAIL", "STATUS", "BALANCE", "CREATED_AT"]
    rows = read_csv(await export_clients(http, token, {**arguments, "columns": columns}))
    assert [row["login"] for row in rows] == [node["login"] for node in expected]
    for row, node in zip(rows, expected, strict=True):
        assert gid("Client", int(row["id"])) == node["id"]
        assert row["email"] == (node["email"] or "")
        assert row["status"] == node["status"]
        # money with its currency (added beside an amount when not chosen), in its digits
        assert (row["balance"], row["currency"]) == (
            node["balance"]["amount"],
            node["balance"]["currency"],
        )
        assert row["created_at"] == node["createdAt"].replace("+00:00", "Z")


async def test_formula_like_cells_are_neutralised(
    http: httpx.AsyncClient, factory: Factory, people: None
) -> None:
    token = await factory.admin_token()
    arguments = {"columns": ["LOGIN", "NAME", "PHONE", "BALANCE"], "orderBy": [{"field": "LOGIN"}]}
    rows = {row["login"]: row for row in read_csv(await export_clients(http, token, arguments))}
    assert rows["bert"]["name"] == '\'=HYPERLINK("http://x")'
    assert rows["bert"]["phone"] == "'+4930123456"
    assert rows["carl"]["name"] == "'@SUM(A1)"
    assert rows["dora"]["name"] == "'-2+3"
    assert rows["dora"]["balance"] == "-7.00"  # a number stays a number
    assert rows["emil"]["name"] == 'Emil "the, quoted"\nsecond line'
    assert (rows["yen"]["balance"], rows["yen"]["currency"]) == ("1500", "JPY")
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "@")) or value.startswith("'")


async def test_the_get_form_takes_the_same_arguments(
    http: httpx.AsyncClient, factory: Factory, people: None
) -> None:
    token = await factory.admin_token()
    response = await http.get(
        "/export/clients.csv",
        params={
            "filter": '{"statuses": ["INACTIVE"]}',
            "columns": "LOGIN,STATUS",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert read_csv(response) == [{"login": "carl", "status": "INACTIVE"}]
    assert "attachment" in response.headers["content-disposition"]


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        ({"filter": {"statuses": ["NOPE"]}}, "statuses"),
        ({"filter": {"nope": 1}}, "nope"),
        ({"columns": ["LOGIN", "PASSWORD_HASH"]}, "PASSWORD_HASH"),
        ({"columns": []}, "columns"),
        ({"orderBy": [{"field": "LOGIN", "direction": "UP"}]}, "orderBy"),
        ({"filter": {"balanceAbove": "NaN"}}, "balanceAbove"),
        ({"first": 10}, "first"),
    ],
)
async def test_bad_arguments_are_refused_before_a_row_is_read(
    http: httpx.AsyncClient, factory: Factory, arguments: dict[str, Any], needle: str
) -> None:
    token = await factory.admin_token()
    response = await export_clients(http, token, arguments)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["extensions"]["code"] for e in errors} == {"BAD_USER_INPUT"}
    assert any(needle in e["message"] for e in errors), errors


async def test_a_token_is_needed_with_the_read_scope(
    http: httpx.AsyncClient, factory: Factory
) -> None:
    anonymous = await http.post("/export/clients.csv", json={})
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    staff = await factory.staff(role=StaffRole.MANAGER)
    narrow = await factory.token(staff, scopes={Scope.CLIENTS_WRITE})
    refused = await export_clients(http, narrow, {})
    assert refused.status_code == 403


async def test_a_manager_exports_what_the_list_shows_them(
    api: GraphQLClient, http: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    manager = await factory.staff(role=StaffRole.MANAGER)
    await factory.client(login="mine", manager_id=manager.id)
    await factory.client(login="theirs")
    await session.commit()
    api.token = token = await factory.token(manager)
    arguments = {"filter": {"ownership": ["OWN"]}}
    expected = [node["login"] for node in await listed(api, arguments)]
    rows = read_csv(await export_clients(http, token, {**arguments, "columns": ["LOGIN"]}))
    assert [row["login"] for row in rows] == expected == ["mine"]


async def test_the_ledger_statement_sums_to_the_balance(
    api: GraphQLClient,
    http: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export, "PAGE", 2)
    admin = await factory.staff(role=StaffRole.ADMIN)
    api.token = token = await factory.token(admin)
    client = await factory.client(login="payer", credit_limit=Decimal(100))
    await session.commit()
    for amount in ("10", "0.5", "7.25"):
        assert (await add(api, client.id, amount))["userErrors"] == []
    assert (await deduct(api, client.id, "3", reason="=cmd|' /C calc'!A0"))["userErrors"] == []
    headers = {"Authorization": f"Bearer {token}"}
    response = await http.get(
        f"/export/clients/{gid('Client', client.id)}/ledger.csv", headers=headers
    )
    rows = read_csv(response)
    assert len(rows) == 4
    assert [row["amount"] for row in rows] == ["10.00", "0.50", "7.25", "-3.00"]
    assert sum(Decimal(row["amount"]) for row in rows) == Decimal("14.75")
    assert rows[-1]["balance_after"] == "14.75"
    assert {row["currency"] for row in rows} == {"EUR"}
    assert {row["created_by"] for row in rows} == {admin.email}
    assert rows[-1]["comment"].startswith("'=")
    missing = await http.get(f"/export/clients/{gid('Client', 999999)}/ledger.csv", headers=headers)
    assert missing.status_code == 404
    bad = await http.get(
        f"/export/clients/{gid('Client', client.id)}/ledger.csv",
        params={"from": "yesterday"},
        headers=headers,
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "arguments",
    [
        {"columns": [["LOGIN"]]},
        {"columns": "LOGIN"},
        {"orderBy": [{"field": "LOGIN"}, {"field": "LOGIN", "direction": "DESC"}]},
        {"search": "x" * 5_000},
    ],
)
async def test_odd_arguments_are_a_400_before_the_download_starts(
    http: httpx.AsyncClient, factory: Factory, arguments: dict[str, Any]
) -> None:
    token = await factory.admin_token()
    response = await export_clients(http, token, arguments)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("client_id", "params"),
    [
        ("not-an-id", {}),
        (None, {"from": "0001-01-01T00:00:00+14:00"}),
        (None, {"to": "9999-12-31T23:59:59-10:00"}),
        (None, {"from": "2026-01-01T00:00:00"}),
        (None, {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
    ],
)
async def test_a_bad_ledger_request_is_a_400(
    http: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    client_id: str | None,
    params: dict[str, str],
) -> None:
    token = await factory.admin_token()
    client = await factory.client()
    await session.commit()
    wanted = client_id or gid("Client", client.id)
    response = await http.get(
        f"/export/clients/{wanted}/ledger.csv",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
