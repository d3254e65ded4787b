"""Hostile values in every argument of every operation: refused cleanly, never a server error.

The schema is walked (gql.schema.schema): every argument of every root field, every field of
every input object below it, and the arguments of the client's own lists (creditEntries,
subAccounts). Each of these gets, in turn, a hostile value of its kind while the other arguments
hold valid ones (rows that exist, amounts a service accepts), so that the hostile value reaches
as far into the code as it can: NUL, lone surrogates (sent as JSON escapes), 100,000 characters,
control characters, CR/LF, right-to-left and combining marks; NaN, ±Infinity, 1e400, -0,
integers past int64 and 2^70; dates in year 1 and 9999 with offsets; tampered cursors; JSON
nested 20,000 deep. Each goes as a variable or as a literal in the document.

An answer passes if it is not a 5xx and has no INTERNAL_SERVER_ERROR. A mutation that accepts a
value is followed by a read of everything it may have touched (a stored value must not break
later reads). Each request runs in a savepoint that is rolled back: the seeded rows stay as
they are. Deterministic (derandomize); the number of requests is printed at the end of the run.
"""

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    get_named_type,
    get_nullable_type,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from clientdesk.demo import DEMO_ADMIN_EMAIL, seed_demo_data
from clientdesk.settings import Settings
from db.enums import EntryKind, TokenKind
from db.models import Client, CreditEntry, StaffUser
from db.session import create_engine, create_sessionmaker
from gql.app import create_app
from gql.schema import schema
from services.auth import issue_token
from tests.conftest import FakeClock, create_scratch_database, drop_scratch_databases
from tests.fuzzing import fuzz_report, known_strings, real_cursors, seeded_ids
from tests.gql.conftest import RICH_LOGIN, SEEDED_AT, enrich_one_client
from tests.hostile import (
    HOSTILE_DATETIMES,
    HOSTILE_DECIMALS,
    HOSTILE_IDS,
    HOSTILE_STRINGS,
    global_id,
    tampered_cursors,
)

EXAMPLES = 2  # hostile values per argument, per database
SCHEMA = schema._schema
STRONG_PASSWORD = "Fuzzing is a Strong password 42!"


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is: NaN, Infinity, 1e400, -0, deep nesting."""

    token: str


DEEP = Raw("[" * 20_000 + "]" * 20_000)
HOSTILE_NUMBERS: list[Any] = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("-0"),
    Raw("1e-400"),
    -0.0,
    1.5,
    2**31,
    -(2**31) - 1,
    2**63,
    -(2**63) - 1,
    2**70,
    10**400,
]
HOSTILE_INTS: list[Any] = [*HOSTILE_NUMBERS, 0, -1, 101, 10**6, "1", True, DEEP]
HOSTILE_JSON: list[Any] = [
    *HOSTILE_NUMBERS,
    DEEP,
    "\x00",
    "\ud800",
    "x" * 100_000,
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "1e400",
    {"a": {"b": [2**70]}},
    [None, True, "x"],
    True,
    "",
]


def hostile_values(
    kind: str, enum: GraphQLEnumType | None, world: "World", turn: int
) -> st.SearchStrategy[Any]:
    """Hostile values for an argument of `kind` (a scalar's name, or an enum). Each argument
    gets the list turned by `turn` places: hypothesis tries a list's first values first, and
    every value should go somewhere."""
    fixed, generated = _hostile_values(kind, enum, world)
    turned = fixed[turn % len(fixed) :] + fixed[: turn % len(fixed)]
    return st.one_of(st.sampled_from(turned), *generated)


def _hostile_values(
    kind: str, enum: GraphQLEnumType | None, world: "World"
) -> tuple[list[Any], list[st.SearchStrategy[Any]]]:
    text = st.text(st.characters(categories=["Cc", "Cs", "Mn", "Zl", "Zp", "Cf"]), max_size=20)
    if enum is not None:
        first = next(iter(enum.values))
        fixed: list[Any] = [
            "NOPE",
            "",
            "\x00",
            "\ud800",
            first.lower(),
            f" {first}",
            1,
            Raw("NaN"),
            DEEP,
        ]
        return fixed, []
    if kind == "String":
        return [*HOSTILE_STRINGS, *tampered_cursors(world.cursors), DEEP, 5], [text]
    if kind == "ID":
        wrong_type = [ids[0] for ids in world.ids.values() if ids]
        return [*HOSTILE_IDS, *wrong_type, 5, DEEP], [text]
    if kind == "Int":
        return HOSTILE_INTS, []
    if kind == "Float":
        return HOSTILE_NUMBERS, []
    if kind == "Decimal":
        return [*HOSTILE_DECIMALS, *HOSTILE_NUMBERS, 5, True, DEEP], []
    if kind == "DateTime":
        return [*HOSTILE_DATETIMES, 5, Raw("1e400"), DEEP], []
    if kind == "JSON":
        return HOSTILE_JSON, []
    if kind == "Boolean":
        return ["true", 1, 0, Raw("NaN"), "\x00", DEEP], []
    raise AssertionError(f"no hostile values for the scalar {kind}: add them")


# -- the seeded database ------------------------------------------------------------------


@dataclass(repr=False)  # hypothesis prints fixtures of a failing example: keep it short
class World:
    """A seeded database, an admin token, and rows for each kind of argument."""

    engine: AsyncEngine
    token: str
    ids: dict[str, list[str]]
    refs: dict[str, str]  # named rows: "client", "parent", "child", "entry", ...
    strings: list[str]
    cursors: list[str]


@pytest.fixture(scope="module")
async def world(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    url = await create_scratch_database(backend, tmp_path_factory.mktemp("hostile"))
    engine = create_engine(url)
    await seed_demo_data(engine, clients=24, seed=7, now=SEEDED_AT)
    async with create_sessionmaker(engine)() as session:
        admin = await session.scalar(select(StaffUser).where(StaffUser.email == DEMO_ADMIN_EMAIL))
        assert admin is not None
        issued = [
            await issue_token(session, staff=admin, kind=TokenKind.API, name=name, now=SEEDED_AT)
            for name in ("hostile", "spare")
        ]
        await enrich_one_client(session, login=RICH_LOGIN, staff_id=admin.id)
        await session.commit()
    refs = await named_rows(engine, spare_token=issued[1].token_id)
    app = create_app(app_settings(), engine=engine, clock=FakeClock(SEEDED_AT))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hostile.test"
    ) as http:
        cursors = await real_cursors(http, "/graphql", issued[0].token, refs["client"])
    yield World(
        engine=engine,
        token=issued[0].token,
        ids=await seeded_ids(engine, spare_tokens=frozenset({issued[0].token_id})),
        refs=refs,
        strings=await known_strings(engine),
        cursors=cursors,
    )
    await engine.dispose()
    await drop_scratch_databases([url])


def app_settings() -> Settings:
    return Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        log_format="console",
        rate_limit_points_per_minute=0,
    )


async def named_rows(engine: AsyncEngine, *, spare_token: int) -> dict[str, str]:
    """Rows that make each mutation's other arguments valid."""
    async with engine.connect() as connection:
        rich = await connection.scalar(select(Client.id).where(Client.login == RICH_LOGIN))
        clients = (await connection.execute(select(Client.__table__))).all()
        entry = await connection.scalar(
            select(CreditEntry.id)
            .where(CreditEntry.kind == EntryKind.PAYMENT)
            .order_by(CreditEntry.id)
        )
        staff = await connection.scalar(select(func.min(StaffUser.id)))
    assert rich is not None
    with_children = {row.parent_id for row in clients if row.parent_id is not None}
    parent = next(row for row in clients if row.parent_id is None and row.id in with_children)
    child = next(
        row
        for row in clients
        if row.parent_id is None
        and row.id not in with_children
        and row.currency == parent.currency
        and row.id != parent.id
    )
    deletable = next(
        (row for row in clients if row.balance == 0 and row.id not in with_children), child
    )
    return {
        "client": global_id("Client", rich),
        "sub_account": global_id("Client", rich),
        "parent": global_id("Client", parent.id),
        "child": global_id("Client", child.id),
        "deletable": global_id("Client", deletable.id),
        "entry": global_id("CreditEntry", entry),
        "staff": global_id("StaffUser", staff),
        "spare_token": global_id("ApiToken", spare_token),
    }


@pytest.fixture
async def hostile_http(world: World) -> AsyncIterator["Sender"]:
    """The app on one connection in a transaction that is rolled back; each request runs in a
    savepoint of its own."""
    async with world.engine.connect() as connection:
        transaction = await connection.begin()
        sessions = async_sessionmaker(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
        )
        app = create_app(
            app_settings(), engine=world.engine, sessionmaker=sessions, clock=FakeClock(SEEDED_AT)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hostile.test") as http:
            yield Sender(http, connection, world.token)
        await transaction.rollback()


@dataclass
class Sender:
    http: httpx.AsyncClient
    connection: AsyncConnection
    token: str
    sent: int = 0

    async def post(self, document: str, variables: Any) -> httpx.Response:
        body = encode({"query": document, "variables": variables})
        self.sent += 1
        return await self.http.post(
            "/graphql",
            content=body.encode("utf-8", "surrogatepass"),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )


# -- walking the schema -----------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """A root field, or a field of Client with arguments (reached through `client(id:)`)."""

    root: str  # "query" or "mutation"
    name: str
    nested: str | None = None

    def __str__(self) -> str:
        return f"{self.name}.{self.nested}" if self.nested else self.name

    @property
    def field(self) -> GraphQLField:
        if self.nested:
            client = SCHEMA.get_type("Client")
            assert isinstance(client, GraphQLObjectType)
            return client.fields[self.nested]
        root = SCHEMA.query_type if self.root == "query" else SCHEMA.mutation_type
        assert root is not None
        return root.fields[self.name]


def operations() -> list[Operation]:
    found = []
    for root_name, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type)):
        assert root is not None
        found += [Operation(root_name, name) for name, f in root.fields.items() if f.args]
    client = SCHEMA.get_type("Client")
    assert isinstance(client, GraphQLObjectType)
    found += [Operation("query", "client", name) for name, f in client.fields.items() if f.args]
    return found


Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Target:
    """One place a value goes: an argument, or a field inside one (list positions as 0)."""

    path: Path
    kind: str
    enum: GraphQLEnumType | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return ".".join(str(step) for step in self.path)


def targets(operation: Operation) -> list[Target]:
    found: list[Target] = []

    def walk(type_: GraphQLInputType, path: Path, seen: frozenset[str]) -> None:
        type_ = get_nullable_type(type_)
        if isinstance(type_, GraphQLList):
            walk(type_.of_type, (*path, 0), seen)
        elif isinstance(type_, GraphQLInputObjectType):
            if type_.name not in seen:
                for name, input_field in type_.fields.items():
                    walk(input_field.type, (*path, name), seen | {type_.name})
        elif isinstance(type_, GraphQLEnumType):
            found.append(Target(path, "enum", type_))
        else:
            assert isinstance(type_, GraphQLScalarType)
            found.append(Target(path, type_.name))

    for name, argument in operation.field.args.items():
        walk(argument.type, (name,), frozenset())
    return found


OPERATIONS = operations()


# -- valid values for the other arguments -----------------------------------------------


def baseline(operation: Operation, refs: dict[str, str]) -> dict[str, Any]:
    """Valid arguments, so that a hostile value in one place reaches the code behind it."""
    client = refs["client"]
    inputs: dict[str, dict[str, Any]] = {
        "tokenCreate": {"name": "fuzz", "scopes": ["CLIENTS_READ"]},
        "clientCreate": {
            "login": "fuzz.new",
            "password": STRONG_PASSWORD,
            "currency": "EUR",
            "email": "fuzz@example.com",
        },
        "creditAdd": {"clientId": client, "amount": "10.00", "paymentMethod": "CASH"},
        "creditDeduct": {"clientId": client, "amount": "1.00", "reason": "fuzz"},
        "creditNoteCreate": {
            "clientId": client,
            "lines": [{"description": "x", "quantity": 1, "unitAmount": "1.00"}],
        },
        "packageCreate": {"name": "Fuzz", "prices": [{"currency": "EUR", "amount": "1.00"}]},
        "customFieldDefinitionCreate": {"key": "fuzz_field", "label": "Fuzz", "type": "TEXT"},
    }
    by_operation: dict[str, dict[str, Any]] = {
        "staffLogin": {"email": DEMO_ADMIN_EMAIL, "password": "not the password"},
        "tokenRevoke": {"id": refs["spare_token"]},
        "clientsSetStatus": {"ids": [client], "status": "INACTIVE"},
        "clientsDelete": {"ids": [refs["deletable"]], "confirm": True},
        "clientBlock": {"id": client, "reason": "fuzz"},
        "clientLink": {"parentId": refs["parent"], "childId": refs["child"]},
        "clientUnlink": {"childId": refs["sub_account"]},
        "clientImpersonate": {"id": client, "reason": "fuzz"},
        "creditEntryReverse": {"entryId": refs["entry"], "reason": "fuzz"},
        "clientPriceAdjustmentSet": {"id": client, "percent": "5.00"},
        "clientPasswordChange": {"id": client, "password": STRONG_PASSWORD},
        "passwordStrength": {"password": STRONG_PASSWORD},
        "packageUpdate": {"id": global_id("Package", 1), "input": {}},
        "customFieldDefinitionUpdate": {"id": global_id("CustomFieldDefinition", 1), "input": {}},
        "customFieldDefinitionDelete": {"id": global_id("CustomFieldDefinition", 1)},
        "node": {"id": client},
        "nodes": {"ids": [client]},
        "clientUpdate": {"id": client, "input": {}},
    }
    if operation.nested:
        return {}
    arguments = dict(by_operation.get(operation.name, {}))
    if operation.name in inputs:
        arguments["input"] = json.loads(json.dumps(inputs[operation.name]))
    for name in ("id", "clientId"):  # any other operation on one client: the rich one
        if name in operation.field.args and name not in arguments:
            arguments[name] = client
    return arguments


# Required fields of input objects made along a target's path.
INPUT_DEFAULTS: dict[str, dict[str, Any]] = {
    "CreditNoteLineInput": {"description": "x", "quantity": 1, "unitAmount": "1.00"},
    "PriceInput": {"currency": "EUR", "amount": "1.00"},
    "ClientOrder": {"field": "LOGIN"},
    "CustomFieldValueInput": {"key": "employees", "value": 7},
}
CUSTOM_FIELD_KEYS = ["vat_number", "employees", "newsletter", "contract_signed", "tier"]


def put(
    arguments: dict[str, Any],
    target: Target,
    value: Any,
    field_type: Callable[[Path], GraphQLInputType],
    defaults: dict[str, dict[str, Any]],
) -> None:
    """`value` at the target's path inside `arguments`, making the containers on the way."""
    container: Any = arguments
    for depth, step in enumerate(target.path[:-1]):
        following = target.path[depth + 1]
        if isinstance(container, list):
            while len(container) <= int(step):
                container.append(None)
            current = container[int(step)]
        else:
            current = container.get(step)
        if current is None:
            if isinstance(following, int):
                current = []
            else:
                named = get_named_type(field_type(target.path[: depth + 1]))
                current = dict(defaults.get(named.name, {}))
            container[step] = current  # type: ignore[index]
        container = current
    last = target.path[-1]
    if isinstance(container, list):
        container.append(value)
    else:
        container[last] = value


def type_at(operation: Operation, path: Path) -> GraphQLInputType:
    """The input type at `path` (list positions step into the list's item type)."""
    type_: Any = operation.field.args[str(path[0])].type
    for step in path[1:]:
        type_ = get_nullable_type(type_)
        if isinstance(type_, GraphQLList):
            type_ = type_.of_type
        else:
            type_ = type_.fields[str(step)].type
    return type_  # type: ignore[no-any-return]


# -- documents --------------------------------------------------------------------------


def selection(type_: Any, depth: int) -> str:
    """Every field without arguments, `depth` levels deep, so stored values are read back."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
        return "{ __typename }"
    assert isinstance(named, GraphQLObjectType)
    parts = ["__typename"]
    for name, child in named.fields.items():
        if child.args:
            continue
        if isinstance(get_named_type(child.type), GraphQLScalarType | GraphQLEnumType):
            parts.append(name)
        elif depth > 1:
            parts.append(f"{name} {selection(child.type, depth - 1)}")
    return "{ " + " ".join(parts) + " }"


def literal(value: Any, type_: Any) -> str:
    """`value` written in the document, for an argument of `type_`."""
    if isinstance(value, Raw):
        return value.token
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    nullable = get_nullable_type(type_) if type_ is not None else None
    if isinstance(value, list):
        item = nullable.of_type if isinstance(nullable, GraphQLList) else None
        return "[" + ", ".join(literal(v, item) for v in value) + "]"
    if isinstance(value, dict):
        fields = nullable.fields if isinstance(nullable, GraphQLInputObjectType) else {}
        return (
            "{"
            + ", ".join(
                f"{k}: {literal(v, fields[k].type if k in fields else None)}"
                for k, v in value.items()
            )
            + "}"
        )
    if isinstance(get_named_type(type_) if type_ else None, GraphQLEnumType) and (
        str(value).isidentifier()
    ):
        return str(value)  # an enum value, known or not
    return json.dumps(value)


def encode(value: Any) -> str:
    """JSON, with Raw tokens as they are (non-standard ones included)."""
    if isinstance(value, Raw):
        return value.token
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


def document(
    operation: Operation, arguments: dict[str, Any], *, as_literal: bool, client: str
) -> tuple[str, dict[str, Any]]:
    """The operation with `arguments` as literals or as variables."""
    args = operation.field.args
    if as_literal:
        written = ", ".join(f"{k}: {literal(v, args[k].type)}" for k, v in arguments.items())
        declared, variables = "", {}
    else:
        written = ", ".join(f"{k}: ${k}" for k in arguments)
        declared = ", ".join(f"${k}: {args[k].type}" for k in arguments)
        variables = dict(arguments)
    call = (
        f"{operation.nested or operation.name}({written})"
        if written
        else (operation.nested or operation.name)
    )
    body = f"{call} {selection(operation.field.type, 3)}"
    if operation.nested:  # the list of one client
        body = f"client(id: {json.dumps(client)}) {{ {body} }}"
    head = f"{operation.root}({declared})" if declared else operation.root
    return f"{head} {{ {body} }}", variables


READ_BACK = """
query ReadBack {
  clients(first: 30) {
    nodes {
      id login name email phone country currency language effectiveLanguage status blocked
      block { reason blockedAt blockedUntil } canLogin balance { amount } creditLimit { amount }
      validTill moderation avatarUrl priceAdjustmentPercent lastActivityAt createdAt updatedAt
      customFields { definition { key type options } value }
      departments { name } categories { name } packagePrices { price { amount } }
      parent { id } subAccounts(first: 5) { totalCount nodes { id } }
      creditEntries(first: 5) {
        nodes {
          kind amount { amount } balanceAfter { amount } paymentMethod paymentReference comment
          validTillSet createdAt
          lines { description quantity unitAmount { amount } amount { amount } }
        }
      }
    }
  }
  auditLog(first: 50) { nodes { action targetLabel before after reason occurredAt } }
  packages(includeInactive: true) { name description isActive prices { amount currency } }
  customFieldDefinitions { key label type options required position }
  apiTokens { name scopes expiresAt revokedAt }
  clientStats { total balances { amount currency } }
}
"""


def problem(response: httpx.Response) -> str | None:
    """What is wrong with an answer, if anything: a 5xx, an internal error, a stack trace."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if "Traceback" in response.text:
        return f"a stack trace: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        return None if response.status_code >= 400 else f"not JSON: {response.text[:300]}"
    errors = (body.get("errors") or []) if isinstance(body, dict) else []
    internal = [
        e for e in errors if (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
    ]
    if internal:
        return f"INTERNAL_SERVER_ERROR at {internal[0].get('path')}"
    return None


async def answer_problem(
    sender: "Sender", operation: Operation, query: str, variables: Any
) -> str | None:
    """What is wrong with the answer to the request, and to a read of everything after a
    mutation that accepted it. An exception out of the app is a 500 over HTTP."""
    try:
        response = await sender.post(query, variables)
        found = problem(response)
        if found is None and operation.root == "mutation" and accepted(operation, response):
            found = problem(await sender.post(READ_BACK, {}))
            found = f"read after it: {found}" if found else None
    except Exception as error:  # raised through the ASGI app: uvicorn answers 500
        return f"the app raised {type(error).__name__}: {str(error)[:200]}"
    return found


def accepted(operation: Operation, response: httpx.Response) -> bool:
    """Whether a mutation changed something (no top-level error, no userErrors)."""
    try:
        body = response.json()
    except ValueError:
        return False
    payload = (body.get("data") or {}).get(operation.name) if isinstance(body, dict) else None
    return isinstance(payload, dict) and not payload.get("userErrors") and not body.get("errors")


def short(value: Any) -> str:
    text = value.token if isinstance(value, Raw) else repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


SENT: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def count_requests(request: pytest.FixtureRequest, backend: str) -> Any:
    yield
    total = SENT.pop(backend, 0)
    fuzz_report(
        request.config,
        f"hostile inputs ({backend}): {total} requests over {len(OPERATIONS)} operations, "
        f"{sum(len(targets(o)) for o in OPERATIONS)} argument paths",
    )


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # every failure is listed; no shrinking
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_hostile_values_in_every_argument_never_cause_a_server_error(
    world: World, hostile_http: Sender, backend: str, operation: Operation, data: st.DataObject
) -> None:
    failures: list[str] = []
    for turn, target in enumerate(targets(operation)):
        # given valid arguments, and a hostile value at one place
        strategy = hostile_values(target.kind, target.enum, world, turn + len(str(operation)))
        value = data.draw(strategy, label=str(target))
        as_literal = data.draw(st.booleans(), label="as literal")
        arguments = baseline(operation, world.refs)
        if operation.name == "client" and not operation.nested:
            arguments = {}  # exactly one of id and login
        defaults = dict(INPUT_DEFAULTS)
        if target.path[-1] == "value" and "customFields" in target.path:
            key = data.draw(st.sampled_from(CUSTOM_FIELD_KEYS), label="custom field")
            defaults["CustomFieldValueInput"] = {"key": key}
        put(arguments, target, value, lambda path: type_at(operation, path), defaults)
        query, variables = document(
            operation, arguments, as_literal=as_literal, client=world.refs["client"]
        )
        # when it is sent (in a savepoint, rolled back after)
        savepoint = await hostile_http.connection.begin_nested()
        try:
            found = await answer_problem(hostile_http, operation, query, variables)
        finally:
            await savepoint.rollback()
        # then it is refused cleanly, or accepted without harm
        if found:
            mode = "literal" if as_literal else "variable"
            failures.append(f"{operation} {target} = {short(value)} ({mode}): {found}")
    SENT[backend] = SENT.get(backend, 0) + hostile_http.sent
    hostile_http.sent = 0
    assert not failures, "\n".join(failures)


# Bodies that are not a GraphQL request: refused with a 4xx (or errors), never a 500.
DEEP_TEXT = "[" * 20_000 + "]" * 20_000
BODIES = [
    "5",
    "null",
    "true",
    '"x"',
    "[]",
    "[1]",
    "{}",
    DEEP_TEXT,
    '{"query": 5}',
    '{"query": null}',
    '{"query": "{ viewer { email } }", "variables": 5}',
    '{"query": "{ viewer { email } }", "variables": "x"}',
    '{"query": "{ viewer { email } }", "variables": []}',
    '{"query": "{ viewer { email } }", "operationName": 5}',
    '{"query": "{ viewer { email } }", "extensions": 5}',
    '{"query": "query($f: ClientFilter) { clients(filter: $f) { totalCount } }", '
    f'"variables": {{"f": {DEEP_TEXT}}}}}',
    '{"query": "query($n: Int) { clients(first: $n) { totalCount } }", "variables": {"n": NaN}}',
    '{"query": "{ viewer { email } }", "x": ' + DEEP_TEXT + "}",
    '{"query": "\\ud800"}',
    '{"query": "{ viewer { email } }"',  # cut short
]


@pytest.mark.parametrize("body", BODIES, ids=[b[:40] for b in BODIES])
async def test_bodies_that_are_not_requests_are_refused(
    world: World, hostile_http: Sender, body: str
) -> None:
    # given a body that is JSON of the wrong shape, too deep, or not JSON
    headers = {"Authorization": f"Bearer {world.token}", "Content-Type": "application/json"}
    # when it is posted
    try:
        response = await hostile_http.http.post("/graphql", content=body, headers=headers)
    except Exception as error:  # raised through the ASGI app: uvicorn answers 500
        pytest.fail(f"the app raised {type(error).__name__}: {str(error)[:300]}")
    # then it is refused: a 4xx or GraphQL errors, and no internal error
    assert problem(response) is None, response.text[:500]
    assert response.status_code >= 400 or response.json().get("errors"), response.text[:500]
