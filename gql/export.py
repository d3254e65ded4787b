"""CSV downloads: the clients list as it is filtered, searched and sorted, and a client's
ledger statement, streamed a keyset page at a time (memory stays flat however many rows).

    POST /export/clients.csv   {"filter": …, "search": …, "orderBy": […], "columns": […]}
    GET  /export/clients.csv?filter=<JSON>&search=…&orderBy=<JSON>&columns=LOGIN,NAME,…
    GET  /export/clients/<global ID>/ledger.csv?from=<ISO 8601>&to=<ISO 8601>

Authenticated like /graphql (`Authorization: Bearer …`, the clients:read scope) and charged
to the token's rate limit. The arguments are read by the schema's own input types (the same
errors as `clients` gives, as GraphQL errors with `extensions.code`), and checked before a row
is read. Cells are safe to open in a spreadsheet: a text starting with = + - @ (or a tab or
carriage return) gets a leading apostrophe, so it is shown, never run as a formula. Amounts
are plain decimals with the currency's digits, beside a currency column; times are ISO 8601
in UTC.
"""

import csv
import functools
import io
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from strawberry.types.arguments import convert_argument

from db.enums import Scope
from db.keyset import Ordering
from db.models import Client as ClientModel
from db.models import CreditEntry, StaffUser
from db.queries import AnySelect, select_clients
from db.session import SharedSession
from gql.arguments import argument_walkers, find_problems
from gql.clients.filters import ClientFilter, FilterScope, client_conditions, filter_problems
from gql.clients.sorters import ClientOrder, client_ordering
from gql.node import pk_of
from gql.pagination import PageRequest, Position, dialect_page_query
from gql.throttling import Cost, charge
from services.money import quantum

PAGE = 1_000  # rows read per statement, each in a short transaction of its own
EXPORT_POINTS = 100  # what a download costs of the token's rate limit
MAX_ARGUMENT_BYTES = 64 * 1024

# column name: (header, value of a row); the staff e-mails are looked up per page
COLUMNS: dict[str, tuple[str, Callable[[Any, dict[int, str]], Any]]] = {
    "ID": ("id", lambda row, _: row.id),
    "LOGIN": ("login", lambda row, _: row.login),
    "NAME": ("name", lambda row, _: row.name),
    "EMAIL": ("email", lambda row, _: row.email),
    "PHONE": ("phone", lambda row, _: row.phone),
    "COUNTRY": ("country", lambda row, _: row.country),
    "CURRENCY": ("currency", lambda row, _: row.currency),
    "LANGUAGE": ("language", lambda row, _: row.language),
    "STATUS": ("status", lambda row, _: row.status),
    "BALANCE": ("balance", lambda row, _: _amount(row.balance, row.currency)),
    "CREDIT_LIMIT": ("credit_limit", lambda row, _: _amount(row.credit_limit, row.currency)),
    "BLOCKED_AT": ("blocked_at", lambda row, _: row.blocked_at),
    "BLOCKED_UNTIL": ("blocked_until", lambda row, _: row.blocked_until),
    "BLOCK_REASON": ("block_reason", lambda row, _: row.block_reason),
    "MANAGER": ("manager", lambda row, staff: staff.get(row.manager_id)),
    "PARENT_ID": ("parent_id", lambda row, _: row.parent_id),
    "VALID_TILL": ("valid_till", lambda row, _: row.valid_till),
    "LAST_ACTIVITY_AT": ("last_activity_at", lambda row, _: row.last_activity_at),
    "CREATED_AT": ("created_at", lambda row, _: row.created_at),
    "UPDATED_AT": ("updated_at", lambda row, _: row.updated_at),
}
DEFAULT_COLUMNS = (
    "ID",
    "LOGIN",
    "NAME",
    "EMAIL",
    "PHONE",
    "COUNTRY",
    "STATUS",
    "BALANCE",
    "CREDIT_LIMIT",
    "CURRENCY",
    "CREATED_AT",
)
MONEY = {"BALANCE", "CREDIT_LIMIT"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ARGUMENTS = cast(
    OperationDefinitionNode,
    parse(
        "query($filter: ClientFilter, $search: String, $orderBy: [ClientOrder!]) { __typename }"
    ).definitions[0],
)


def _amount(amount: Decimal | None, currency: str) -> Decimal | None:
    return None if amount is None else amount.quantize(quantum(currency))


def cell(value: Any) -> str:
    """A value as a CSV cell a spreadsheet shows and never evaluates."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal | int):
        return str(value)  # numbers are numbers ("-12.50" is a debt, not a formula)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _line(values: Sequence[str]) -> bytes:
    return _lines([values])


def _lines(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


class ExportError(Exception):
    """The request cannot be answered: an HTTP status and GraphQL-shaped errors."""

    def __init__(self, status: int, code: str, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.code = code
        self.messages = list(messages)

    def response(self) -> Response:
        return JSONResponse(
            {
                "errors": [
                    {"message": message, "extensions": {"code": self.code}}
                    for message in self.messages
                ]
            },
            status_code=self.status,
        )


def _bad(*messages: str) -> ExportError:
    return ExportError(400, "BAD_USER_INPUT", messages)


async def _arguments(request: Request) -> dict[str, Any]:
    """The raw arguments: the POSTed JSON object, or the query string (filter and orderBy
    as JSON, columns comma-separated)."""
    if request.method == "POST":
        body = await request.body()
        if len(body) > MAX_ARGUMENT_BYTES:
            raise _bad("The request body is too large.")
        try:
            raw = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            raise _bad("The request body is not JSON.") from None
        if not isinstance(raw, dict):
            raise _bad("The request body is a JSON object.")
        return cast(dict[str, Any], raw)
    given: dict[str, Any] = {}
    params = request.query_params
    for name in ("filter", "orderBy"):
        if name in params:
            text = params[name]
            if len(text) > MAX_ARGUMENT_BYTES:
                raise _bad(f"`{name}` is too long.")
            try:
                given[name] = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise _bad(f"`{name}` is not JSON.") from None
    if "search" in params:
        given["search"] = params["search"]
    if "columns" in params:
        given["columns"] = [c.strip() for c in params["columns"].split(",") if c.strip()]
    return given


@functools.cache
def _list_walkers() -> list[tuple[str, str, Any]]:
    from gql.clients.queries import ClientQuery

    definition = ClientQuery.__strawberry_definition__  # type: ignore[attr-defined]
    field = next(f for f in definition.fields if f.python_name == "clients")
    return argument_walkers(field)


def read_list_arguments(
    raw: dict[str, Any],
) -> tuple[ClientFilter | None, str | None, list[ClientOrder] | None, list[str]]:
    """The list's arguments read by the schema's types (as `clients` reads them), and the
    columns; ExportError (400, BAD_USER_INPUT) naming every problem."""
    unknown = set(raw) - {"filter", "search", "orderBy", "columns"}
    if unknown:
        raise _bad(f"Unknown arguments: {', '.join(sorted(map(str, unknown)))}.")
    columns = raw.get("columns", list(DEFAULT_COLUMNS))
    if not isinstance(columns, list) or not columns or len(columns) > len(COLUMNS):
        raise _bad(f"`columns` lists 1 to {len(COLUMNS)} of {', '.join(COLUMNS)}.")
    wrong = [str(c)[:40] for c in columns if not isinstance(c, str) or c not in COLUMNS]
    if wrong:
        raise _bad(f"Unknown columns: {', '.join(wrong)}; choose from {', '.join(COLUMNS)}.")
    columns = list(dict.fromkeys(columns))
    if MONEY & set(columns) and "CURRENCY" not in columns:
        columns.append("CURRENCY")  # an amount is never without its currency
    variables: dict[str, Any] = {
        name: raw[name] for name in ("filter", "search", "orderBy") if name in raw
    }
    from gql.schema import schema  # (the schema's module imports the app's pieces)

    read = get_variable_values(
        schema._schema, ARGUMENTS.variable_definitions or (), variables, hide_suggestions=True
    )
    if isinstance(read, list):
        raise _bad(*(error.message for error in read))
    coerced = read.coerced
    registry, config = schema.schema_converter.scalar_registry, schema.config
    filter = (
        cast(ClientFilter, convert_argument(coerced["filter"], ClientFilter, registry, config))
        if coerced.get("filter") is not None
        else None
    )
    order_by = (
        [
            cast(ClientOrder, convert_argument(item, ClientOrder, registry, config))
            for item in coerced["orderBy"]
        ]
        if coerced.get("orderBy") is not None
        else None
    )
    search = coerced.get("search")
    # the problems `clients` reports for the same arguments (values no column holds, …)
    kwargs = {"filter": filter, "search": search, "order_by": order_by}
    problems = find_problems(_list_walkers(), kwargs) + filter_problems(kwargs)
    if problems:
        raise _bad(*(f"`{'.'.join(p.path)}`: {p.message}" for p in problems))
    return filter, search, order_by, columns


async def _viewer(request: Request, db: SharedSession) -> Any:
    """The request's context with its viewer (who must hold clients:read), charged."""
    from gql.app import build_context  # (the app imports this module)

    context = await build_context(request, db, request.app.state)
    viewer = context.viewer
    if viewer is None:
        raise ExportError(401, "UNAUTHENTICATED", ["Send a valid token (Authorization: Bearer)."])
    if not viewer.has_scope(Scope.CLIENTS_READ):
        raise ExportError(403, "FORBIDDEN", ["This token lacks the `clients:read` scope."])
    refused = await charge(context, Cost(nodes=0, points=EXPORT_POINTS))
    if refused is not None:
        raise ExportError(429, str((refused.extensions or {}).get("code")), [refused.message])
    return context


async def clients_csv(request: Request) -> Response:
    db = SharedSession(request.app.state.sessionmaker)
    try:
        context = await _viewer(request, db)
        filter, search, order_by, columns = read_list_arguments(await _arguments(request))
    except ExportError as error:
        return error.response()
    except GraphQLError as error:  # a scalar's own refusal, as the endpoint gives it
        return _bad(error.message).response()
    finally:
        await db.finish()
    scope = FilterScope(viewer_id=context.viewer.staff_id, now=context.now)
    try:  # (refused here, before the response starts, as `clients` refuses them)
        ordering = client_ordering(order_by, now=scope.now)
        conditions = client_conditions(filter, search, scope)
    except GraphQLError as error:
        return _bad(error.message).response()
    query = select_clients().add_columns(*ordering.computed_columns).where(*conditions)
    stamp = context.now.strftime("%Y%m%d-%H%M%S")
    return _download(_client_rows(request, query, ordering, columns), f"clients-{stamp}.csv")


def _download(rows: AsyncIterator[bytes], filename: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


async def _staff_emails(
    session: AsyncSession, ids: Iterable[int | None], known: dict[int, str]
) -> None:
    """Add to `known` the e-mails of the staff users among `ids` it lacks (one query)."""
    wanted = {pk for pk in ids if pk is not None} - set(known)
    if wanted:
        found = await session.execute(
            select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(wanted))
        )
        known.update({pk: email for pk, email in found})


async def _client_rows(
    request: Request, query: AnySelect, ordering: Ordering, columns: list[str]
) -> AsyncIterator[bytes]:
    sessions = request.app.state.sessionmaker
    readers = [COLUMNS[name][1] for name in columns]
    staff: dict[int, str] = {}
    yield "\ufeff".encode() + _line([COLUMNS[name][0] for name in columns])  # BOM: Excel
    after: Position | None = None
    while True:
        page = PageRequest(size=PAGE, backwards=False, after=after, before=None)
        async with sessions() as session:
            dialect = session.get_bind().dialect.name
            rows = list(await session.execute(dialect_page_query(query, ordering, page, dialect)))
            if "MANAGER" in columns:
                await _staff_emails(session, (row.manager_id for row in rows), staff)
        chunk = _lines([cell(read(row, staff)) for read in readers] for row in rows[:PAGE])
        if chunk:
            yield chunk
        if len(rows) <= PAGE:
            return
        last = rows[PAGE - 1]._mapping
        after = Position(
            tuple(last[key.field] for key in ordering.keys), last[ordering.tiebreaker.key]
        )


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
LEDGER_HEADER = (
    "id",
    "created_at",
    "kind",
    "amount",
    "currency",
    "balance_after",
    "payment_method",
    "payment_reference",
    "comment",
    "reverses_id",
    "created_by",
)


def _instant(params: Any, name: str) -> datetime | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"`{name}` is not an ISO 8601 date-time.") from None
    if value.tzinfo is None:
        raise _bad(f"`{name}` needs a time zone (Z, or an offset).")
    out_of_range = _bad(f"`{name}` is out of range (years 1900 to 9999).")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise out_of_range from None
    if not EARLIEST <= value <= LATEST:
        raise out_of_range
    return value


async def ledger_csv(request: Request) -> Response:
    """A client's ledger entries, oldest first, optionally from/to (to not included)."""
    db = SharedSession(request.app.state.sessionmaker)
    try:
        await _viewer(request, db)
        pk = pk_of(request.path_params["client_id"], "Client")
        start = _instant(request.query_params, "from")
        end = _instant(request.query_params, "to")
        if start is not None and end is not None and start >= end:
            raise _bad("`from` is before `to`.")
        async with db.exclusive() as session:
            found = pk is not None and await session.scalar(
                select(ClientModel.id).where(ClientModel.id == pk)
            )
        if not found:
            raise ExportError(404, "NOT_FOUND", ["No such client."])
    except ExportError as error:
        return error.response()
    except GraphQLError as error:  # a malformed ID
        return _bad(error.message).response()
    finally:
        await db.finish()
    assert pk is not None
    return _download(_ledger_rows(request, pk, start, end), f"ledger-{pk}.csv")


async def _ledger_rows(
    request: Request, client_id: int, start: datetime | None, end: datetime | None
) -> AsyncIterator[bytes]:
    sessions = request.app.state.sessionmaker
    conditions = [CreditEntry.client_id == client_id]
    if start is not None:
        conditions.append(CreditEntry.created_at >= start)
    if end is not None:
        conditions.append(CreditEntry.created_at < end)
    staff: dict[int, str] = {}
    yield "\ufeff".encode() + _line(LEDGER_HEADER)
    after = 0
    while True:
        async with sessions() as session:
            rows = list(
                await session.execute(
                    select(CreditEntry.__table__)
                    .where(*conditions, CreditEntry.id > after)
                    .order_by(CreditEntry.id)
                    .limit(PAGE)
                )
            )
            await _staff_emails(session, (row.created_by_id for row in rows), staff)
        if rows:
            yield _lines(
                (
                    [
                        cell(value)
                        for value in (
                            row.id,
                            row.created_at,
                            row.kind,
                            _amount(row.amount, row.currency),
                            row.currency,
                            _amount(row.balance_after, row.currency),
                            row.payment_method,
                            row.payment_reference,
                            row.comment,
                            row.reverses_id,
                            staff.get(row.created_by_id) if row.created_by_id else None,
                        )
                    ]
                )
                for row in rows
            )
        if len(rows) < PAGE:
            return
        after = rows[-1].id
