"""The authorization matrix, tried for real: every root operation, for each role, with and
without the scope it needs; documents are generated from the schema. Plus the ways around a
rule that must not work (IDs of other types, nested paths, tokens)."""

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
)

from db.enums import Scope, StaffRole
from gql.permissions import authorization_matrix, matrix_table
from gql.schema import schema
from services.auth import ROLE_SCOPES
from tests.api import GraphQLClient, error_codes
from tests.conftest import FakeClock
from tests.factories import Factory

README = Path(__file__).parent.parent.parent / "README.md"
RULES = authorization_matrix(schema)
SAMPLES: dict[str, Any] = {
    "ID": base64.b64encode(b"Client:0").decode(),
    "String": "sample",
    "Int": 1,
    "Boolean": False,
    "Decimal": "1",
    "DateTime": "2030-01-01T00:00:00Z",
    "JSON": "sample",
}


def sample(type_: Any) -> Any:
    """A value of `type_` that passes validation (what it means does not matter here)."""
    if isinstance(type_, GraphQLNonNull):
        return sample(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [sample(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: sample(field.type)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        }
    assert isinstance(type_, GraphQLScalarType)
    return SAMPLES[type_.name]


def document(kind: str, operation: str) -> tuple[str, dict[str, Any]]:
    """`query/mutation($a: T!) { operation(a: $a) { __typename } }` with sample values."""
    root = schema._schema.query_type if kind == "query" else schema._schema.mutation_type
    assert root is not None
    field = root.fields[operation]
    required = {
        name: argument
        for name, argument in field.args.items()
        if isinstance(argument.type, GraphQLNonNull) and argument.default_value is Undefined
    }
    if operation == "client":  # exactly one of id and login
        required = {"login": field.args["login"]}
    declared = ", ".join(f"${name}: {argument.type}" for name, argument in required.items())
    passed = ", ".join(f"{name}: ${name}" for name in required)
    selection = "{ __typename }" if _is_object(field.type) else ""
    head = f"{kind}({declared})" if declared else kind
    call = f"{operation}({passed})" if passed else operation
    text = f"{head} {{ {call} {selection} }}"
    variables = {name: sample(argument.type) for name, argument in required.items()}
    if operation == "client":
        variables = {"login": "sample"}
    return text, variables


def _is_object(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return not isinstance(type_, GraphQLScalarType | GraphQLEnumType)


def test_readme_shows_the_matrix_the_code_enforces() -> None:
    text = README.read_text()
    start, end = "<!-- authorization matrix: start -->\n", "<!-- authorization matrix: end -->"
    assert start in text, "README needs the matrix (see `clientdesk export-matrix`)"
    shown = text.split(start, 1)[1].split(end, 1)[0]
    assert shown == matrix_table(RULES), "README matrix is stale: run `clientdesk export-matrix`"


def test_every_root_field_is_in_the_matrix() -> None:
    roots = {*schema._schema.query_type.fields, *schema._schema.mutation_type.fields}  # type: ignore[union-attr]
    assert {rule.operation for rule in RULES} == roots
    # and nothing but staffLogin is public
    assert [rule.operation for rule in RULES if rule.public] == ["staffLogin"]
    assert all(
        rule.public or rule.scope or rule.kind == "query" or rule.operation.startswith("token")
        for rule in RULES
    )


async def run(api: GraphQLClient, kind: str, operation: str, token: str | None) -> list[str]:
    text, variables = document(kind, operation)
    response = await api.post(text, variables, token=token)
    assert response.status_code == 200, response.text
    return error_codes(response.json().get("errors") or [])


def allowed(rule: Any, role: StaffRole) -> bool:
    if rule.admins_only or rule.scope is Scope.STAFF_ADMIN:
        return role is StaffRole.ADMIN
    return True


@pytest.mark.parametrize("role", list(StaffRole))
@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.operation)
async def test_each_role_on_each_operation(
    api: GraphQLClient, factory: Factory, rule: Any, role: StaffRole
) -> None:
    token = await factory.token(await factory.staff(role=role))
    codes = await run(api, rule.kind, rule.operation, token)
    if allowed(rule, role):
        assert "FORBIDDEN" not in codes
        assert "UNAUTHENTICATED" not in codes
    else:
        assert codes == ["FORBIDDEN"]


@pytest.mark.parametrize("rule", [r for r in RULES if r.scope], ids=lambda rule: rule.operation)
async def test_each_operation_without_its_scope(
    api: GraphQLClient, factory: Factory, rule: Any
) -> None:
    lacking = set(ROLE_SCOPES[StaffRole.ADMIN]) - {rule.scope}
    token = await factory.token(await factory.staff(role=StaffRole.ADMIN), scopes=lacking)
    assert await run(api, rule.kind, rule.operation, token) == ["FORBIDDEN"]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.operation)
async def test_each_operation_without_a_token(api: GraphQLClient, rule: Any) -> None:
    codes = await run(api, rule.kind, rule.operation, None)
    if rule.public:
        assert "UNAUTHENTICATED" not in codes
    else:
        assert codes == ["UNAUTHENTICATED"]


# --- the ways around a rule --------------------------------------------------------------


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def test_ids_of_another_type_find_nothing(api: GraphQLClient, factory: Factory) -> None:
    api.token = await factory.admin_token()
    staff = await factory.staff()
    client = await factory.client(login="real")
    data = await api(
        "query($c: ID!, $s: ID!) { client(id: $s) { id } a: node(id: $s) { __typename } "
        "b: node(id: $c) { __typename } }",
        {"c": gid("Client", client.id), "s": gid("StaffUser", staff.id)},
    )
    assert data == {"client": None, "a": {"__typename": "StaffUser"}, "b": {"__typename": "Client"}}
    update = await api(
        'mutation($id: ID!) { clientUpdate(id: $id, input: {name: "x"}) { userErrors { code } } }',
        {"id": gid("StaffUser", staff.id)},
    )
    assert update["clientUpdate"]["userErrors"] == [{"code": "NOT_FOUND"}]


async def test_without_clients_read_clients_are_unseen_everywhere(
    api: GraphQLClient, factory: Factory
) -> None:
    # a billing integration that may post payments but not read clients
    token = await factory.token(await factory.staff(), scopes={Scope.CREDITS_WRITE})
    client = await factory.client(login="hidden", currency="EUR")
    cid = gid("Client", client.id)
    assert (await api("query($id: ID!) { node(id: $id) { id } }", {"id": cid}, token=token)) == {
        "node": None
    }
    nodes = await api(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [cid]}, token=token
    )
    assert nodes == {"nodes": [None]}
    paid = await api.post(
        """mutation($id: ID!) {
          creditAdd(input: {clientId: $id, amount: "5.00", paymentMethod: CASH}) {
            entry { amount { amount } client { login } } client { login } userErrors { code }
          }
        }""",
        {"id": cid},
        token=token,
    )
    body = paid.json()
    assert body["data"]["creditAdd"]["entry"]["amount"] == {"amount": "5.00"}
    assert body["data"]["creditAdd"]["client"] is None
    assert sorted(tuple(e["path"]) for e in body["errors"]) == [
        ("creditAdd", "client"),
        ("creditAdd", "entry", "client"),
    ]
    assert set(error_codes(body["errors"])) == {"FORBIDDEN"}


async def test_staff_changes_in_the_audit_log_are_for_admins(
    api: GraphQLClient, factory: Factory
) -> None:
    admin = await factory.admin_token()
    manager = await factory.token(await factory.staff(role=StaffRole.MANAGER))
    created = await api(
        'mutation { tokenCreate(input: {name: "sync", scopes: [CLIENTS_READ]}) '
        "{ apiToken { id } } }",
        token=admin,
    )
    token_id = created["tokenCreate"]["apiToken"]["id"]
    query = "query($id: ID!) { auditLog(filter: {targetId: $id}) { nodes { action } } }"
    assert (await api(query, {"id": token_id}, token=admin))["auditLog"]["nodes"] == [
        {"action": "token.create"}
    ]
    assert (await api(query, {"id": token_id}, token=manager))["auditLog"]["nodes"] == []


# --- tokens ------------------------------------------------------------------------------

CREATE = """
mutation($input: TokenCreateInput!) {
  tokenCreate(input: $input) {
    token apiToken { id name prefix scopes expiresAt revokedAt owner { email } }
    userErrors { field code message }
  }
}
"""
REVOKE = (
    "mutation($id: ID!) { tokenRevoke(id: $id) { apiToken { revokedAt } userErrors { code } } }"
)


async def test_tokens_hold_at_most_their_creators_scopes(
    api: GraphQLClient, factory: Factory
) -> None:
    reader = await factory.token(
        await factory.staff(role=StaffRole.ADMIN), scopes={Scope.CLIENTS_READ, Scope.TOKENS_WRITE}
    )
    escalate = (
        await api(
            CREATE,
            {"input": {"name": "more", "scopes": ["CLIENTS_READ", "CREDITS_WRITE"]}},
            token=reader,
        )
    )["tokenCreate"]
    assert [(e["field"], e["code"]) for e in escalate["userErrors"]] == [
        (["input", "scopes"], "INVALID_SCOPE")
    ]
    same = (
        await api(CREATE, {"input": {"name": "sync", "scopes": ["CLIENTS_READ"]}}, token=reader)
    )["tokenCreate"]
    assert same["userErrors"] == []
    secret = same["token"]
    assert secret.startswith("cd_")
    assert same["apiToken"]["prefix"] == secret[:12]
    assert (await api("{ viewer { scopes } }", token=secret))["viewer"]["scopes"] == [
        "CLIENTS_READ"
    ]
    # revoked: it stops at once
    revoked = (await api(REVOKE, {"id": same["apiToken"]["id"]}, token=reader))["tokenRevoke"]
    assert revoked["apiToken"]["revokedAt"] is not None
    assert error_codes(await api.errors("{ viewer { name } }", token=secret)) == ["UNAUTHENTICATED"]


async def test_only_staff_admins_handle_other_peoples_tokens(
    api: GraphQLClient, factory: Factory
) -> None:
    admin = await factory.admin_token()
    mia = await factory.staff(role=StaffRole.MANAGER, email="mia@clientdesk.test")
    mias = await factory.token(mia)
    for_mia = (
        await api(
            CREATE,
            {
                "input": {
                    "name": "for mia",
                    "scopes": ["CLIENTS_READ"],
                    "staffId": gid("StaffUser", mia.id),
                }
            },
            token=admin,
        )
    )["tokenCreate"]
    assert for_mia["apiToken"]["owner"] == {"email": "mia@clientdesk.test"}
    others = await api.errors(
        "query($id: ID!) { apiTokens(staffId: $id) { id } }",
        {"id": gid("StaffUser", 1)},
        token=mias,
    )
    assert error_codes(others) == ["FORBIDDEN"]
    listed = (await api("{ apiTokens { name } }", token=mias))["apiTokens"]
    assert {"name": "for mia"} in listed
    admins_token = (await api("{ apiTokens { id } }", token=admin))["apiTokens"][0]["id"]
    assert (await api(REVOKE, {"id": admins_token}, token=mias))["tokenRevoke"]["userErrors"] == [
        {"code": "NOT_FOUND"}
    ]
    assert (
        await api("query($id: ID!) { node(id: $id) { id } }", {"id": admins_token}, token=mias)
    )["node"] is None
    by_manager = await api.errors(
        CREATE,
        {"input": {"name": "x", "scopes": ["CLIENTS_READ"], "staffId": gid("StaffUser", 1)}},
        token=mias,
    )
    assert error_codes(by_manager) == ["FORBIDDEN"]


VIEWER = "{ viewer { name } }"


def refused_as(errors: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["extensions"]["code"], e["extensions"].get("reason")) for e in errors]


async def test_a_token_mints_no_token_that_outlives_it(
    api: GraphQLClient, factory: Factory, clock: FakeClock
) -> None:
    # given a token that expires in an hour
    admin = await factory.staff(role=StaffRole.ADMIN)
    ends = clock() + timedelta(hours=1)
    expiring = await factory.token(admin, expires_at=ends)
    # when it mints one without an expiry, then the new one expires with it
    inherited = (
        await api(CREATE, {"input": {"name": "a", "scopes": ["CLIENTS_READ"]}}, token=expiring)
    )["tokenCreate"]
    assert inherited["userErrors"] == []
    assert datetime.fromisoformat(inherited["apiToken"]["expiresAt"]) == ends
    # when it asks for a later expiry, then it is refused and nothing is created
    later = (ends + timedelta(days=30)).isoformat()
    refused = (
        await api(
            CREATE,
            {"input": {"name": "b", "scopes": ["CLIENTS_READ"], "expiresAt": later}},
            token=expiring,
        )
    )["tokenCreate"]
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "expiresAt"], "OUT_OF_RANGE")
    ]
    assert refused["token"] is None
    # an earlier one is fine
    sooner = (ends - timedelta(minutes=30)).isoformat()
    earlier = (
        await api(
            CREATE,
            {"input": {"name": "c", "scopes": ["CLIENTS_READ"], "expiresAt": sooner}},
            token=expiring,
        )
    )["tokenCreate"]
    assert earlier["userErrors"] == []
    listed = (await api("{ apiTokens { name } }", token=expiring))["apiTokens"]
    assert sorted(t["name"] for t in listed) == ["a", "c", "test"]
    # then when the hour has passed, the minted token stops with the one that minted it
    clock.advance(timedelta(hours=1))
    assert refused_as(await api.errors(VIEWER, token=inherited["token"])) == [
        ("UNAUTHENTICATED", "expired")
    ]


async def test_tokens_die_with_the_token_that_minted_them(
    api: GraphQLClient, factory: Factory
) -> None:
    # given a token, a token it minted, and one that one minted
    admin = await factory.staff(role=StaffRole.ADMIN)
    parent = await factory.token(admin)
    bystander = await factory.token(admin)
    scopes = ["CLIENTS_READ", "TOKENS_WRITE"]
    child = (await api(CREATE, {"input": {"name": "child", "scopes": scopes}}, token=parent))[
        "tokenCreate"
    ]
    grandchild = (
        await api(CREATE, {"input": {"name": "grandchild", "scopes": scopes}}, token=child["token"])
    )["tokenCreate"]
    assert (await api(VIEWER, token=grandchild["token"]))["viewer"]["name"] == admin.name
    # when the parent is revoked (by the owner's other token)
    parent_id = next(
        t["id"]
        for t in (await api("{ apiTokens { id name prefix } }", token=bystander))["apiTokens"]
        if t["prefix"] == parent[:12]
    )
    assert (await api(REVOKE, {"id": parent_id}, token=bystander))["tokenRevoke"][
        "userErrors"
    ] == []
    # then both descendants are refused as revoked; the bystander still works
    for token in (parent, child["token"], grandchild["token"]):
        assert refused_as(await api.errors(VIEWER, token=token)) == [("UNAUTHENTICATED", "revoked")]
    assert (await api(VIEWER, token=bystander))["viewer"]["name"] == admin.name


async def test_a_token_without_tokens_write_revokes_only_itself_and_its_own(
    api: GraphQLClient, factory: Factory
) -> None:
    # given an admin's full token and a credits:write-only token of the same admin
    admin = await factory.staff(role=StaffRole.ADMIN)
    full = await factory.token(admin)
    billing = await factory.token(admin, scopes={Scope.CREDITS_WRITE})
    ids = {
        t["prefix"]: t["id"]
        for t in (await api("{ apiTokens { id prefix } }", token=full))["apiTokens"]
    }
    # when the credits:write-only token revokes the full one, then it is refused
    errors = await api.errors(REVOKE, {"id": ids[full[:12]]}, token=billing)
    assert errors[0]["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "MISSING_SCOPE",
        "fields": [["id"]],
    }
    assert (await api(VIEWER, token=full))["viewer"]["name"] == admin.name
    # nor may it mint tokens or list them
    for document, variables in (
        (CREATE, {"input": {"name": "x", "scopes": ["CREDITS_WRITE"]}}),
        ("{ apiTokens { id } }", None),
    ):
        assert refused_as(await api.errors(document, variables, token=billing)) == [
            ("FORBIDDEN", "MISSING_SCOPE")
        ]
    # but it may revoke itself
    assert (await api(REVOKE, {"id": ids[billing[:12]]}, token=billing))["tokenRevoke"][
        "userErrors"
    ] == []
    assert refused_as(await api.errors(VIEWER, token=billing)) == [("UNAUTHENTICATED", "revoked")]


# --- input fields that need a scope of their own -------------------------------------------

# (operation, input path, scope) for every governed field, read from the permission classes
INPUT = GraphQLInputObjectType
FIELD_RULES = [(rule.operation, path, scope) for rule in RULES for path, scope in rule.fields]
# a value that passes every rule, per field (the fixture supplies the parent and the staff)
FIELD_VALUES: dict[str, Any] = {
    "status": "INACTIVE",
    "creditLimit": "10.00",
    "validTill": "2030-01-01T00:00:00Z",
    "priceAdjustmentPercent": "5.00",
}
SCOPED_CREATE = """
mutation($input: ClientCreateInput!) { clientCreate(input: $input) {
  client { login status creditLimit { amount } validTill priceAdjustmentPercent
           manager { email } parent { login } }
  userErrors { field code }
} }
"""
SCOPED_UPDATE = """
mutation($id: ID!, $input: ClientUpdateInput!) { clientUpdate(id: $id, input: $input) {
  client { login status creditLimit { amount } validTill priceAdjustmentPercent
           manager { email } parent { login } }
  userErrors { field code }
} }
"""


def test_every_client_input_field_owned_by_another_operation_is_governed() -> None:
    # a client input field named like an input of another operation on a client (an input
    # with `clientId`) needs that operation's scope (validTill: creditAdd), and the table
    # names only fields the inputs have
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    scopes = {rule.operation: rule.scope for rule in RULES}
    governed = {(operation, path.split(".")[1]): scope for operation, path, scope in FIELD_RULES}
    for operation in ("clientCreate", "clientUpdate"):
        fields = mutation_type.fields[operation].args["input"].type.of_type.fields
        assert {name for op, name in governed if op == operation} <= set(fields)
        for other, field in mutation_type.fields.items():
            inputs = {
                name
                for argument in field.args.values()
                if isinstance(kind := getattr(argument.type, "of_type", None), INPUT)
                and "clientId" in kind.fields
                for name in kind.fields
            }
            for name in set(fields) & inputs:
                if scopes[other] not in (None, scopes[operation]):
                    assert governed.get((operation, name)) == scopes[other], (operation, name)
    assert governed[("clientUpdate", "priceAdjustmentPercent")] is Scope.PRICING_WRITE
    assert governed[("clientUpdate", "managerId")] is Scope.STAFF_ADMIN


@pytest.mark.parametrize(
    ("operation", "path", "scope"), FIELD_RULES, ids=lambda v: str(getattr(v, "value", v))
)
async def test_each_governed_field_with_and_without_its_scope(
    api: GraphQLClient, factory: Factory, operation: str, path: str, scope: Scope
) -> None:
    # given an admin, a client to change, a parent and a manager to point at
    admin = await factory.staff(role=StaffRole.ADMIN)
    manager = await factory.staff(role=StaffRole.MANAGER)
    parent = await factory.client(login="parent")
    client = await factory.client(login="target")
    name = path.split(".")[1]
    value = {
        **FIELD_VALUES,
        "managerId": gid("StaffUser", manager.id),
        "parentId": gid("Client", parent.id),
    }[name]
    everything = set(ROLE_SCOPES[StaffRole.ADMIN])
    lacking = await factory.token(admin, scopes=everything - {scope})
    holding = await factory.token(admin, scopes=everything)
    if operation == "clientCreate":
        document = SCOPED_CREATE
        base = {"login": "newbie", "password": "correct horse battery staple"}
        variables: dict[str, Any] = {
            "input": {**base, "currency": "EUR", "email": "n@example.com", name: value}
        }
    else:
        document = SCOPED_UPDATE
        variables = {"id": gid("Client", client.id), "input": {name: value}}
    before = await api(
        "query { clients(first: 10) { nodes { login status creditLimit { amount } validTill "
        "priceAdjustmentPercent manager { email } parent { login } } } }",
        token=holding,
    )
    # when a token holding every scope but that one tries, then it is refused, naming the field
    errors = await api.errors(document, variables, token=lacking)
    assert error_codes(errors) == ["FORBIDDEN"]
    if scope is not Scope.CLIENTS_WRITE:  # else the operation itself is refused first
        assert errors[0]["extensions"] == {
            "code": "FORBIDDEN",
            "reason": "MISSING_SCOPE",
            "scope": scope.value,
            "fields": [["input", name]],
        }
    # and nothing changed
    after = await api(
        "query { clients(first: 10) { nodes { login status creditLimit { amount } validTill "
        "priceAdjustmentPercent manager { email } parent { login } } } }",
        token=holding,
    )
    assert after == before
    # when a token holding it tries, then it goes through
    done = (await api(document, variables, token=holding))[operation]
    assert done["userErrors"] == []
    shown = {
        "status": done["client"]["status"],
        "creditLimit": done["client"]["creditLimit"]["amount"],
        "validTill": (done["client"]["validTill"] or "")[:10],
        "priceAdjustmentPercent": done["client"]["priceAdjustmentPercent"],
        "managerId": (done["client"]["manager"] or {}).get("email"),
        "parentId": (done["client"]["parent"] or {}).get("login"),
    }[name]
    assert (
        shown
        == {
            **FIELD_VALUES,
            "validTill": "2030-01-01",
            "managerId": manager.email,
            "parentId": "parent",
        }[name]
    )
