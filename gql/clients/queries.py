"""Queries that read clients: one, a page of many, and statistics."""

from datetime import timedelta
from typing import Annotated

import strawberry
from sqlalchemy import func, select

from db.enums import ClientStatus, Scope
from db.models import Client as ClientModel
from db.queries import exact_sum, read_exact_sum, select_clients
from gql.arguments import check_arguments
from gql.clients.filters import (
    ClientFilter,
    FilterScope,
    client_conditions,
    count_clients,
    filter_problems,
    is_blocked,
)
from gql.clients.sorters import ClientOrder, client_ordering
from gql.clients.types import Client, client_from_row
from gql.context import Info
from gql.errors import BadUserInput
from gql.loaders import selected_names
from gql.node import pk_of
from gql.pagination import (
    AfterArg,
    BeforeArg,
    Connection,
    FirstArg,
    LastArg,
    page_request,
    paginate,
)
from gql.permissions import HasScope, IsAuthenticated
from gql.scalars import Money
from services.passwords import MAX_LENGTH, MIN_LENGTH, SCORED_LENGTH, score_password
from services.validation import LOGIN_PATTERN

FilterArg = Annotated[
    ClientFilter | None, strawberry.argument(description="Conditions, combined with AND.")
]
SearchArg = Annotated[
    str | None,
    strawberry.argument(description="Text that login, name, e-mail or phone contains."),
]
ACTIVE_WINDOW = timedelta(days=7)


@strawberry.type(description="Figures for the boxes above the clients table.")
class ClientStats:
    total: int = strawberry.field(description="Clients matching the filter.")
    active_last_7_days: int = strawberry.field(description="Of those, active in the last 7 days.")
    blocked: int = strawberry.field(description="Of those, blocked now.")
    inactive: int = strawberry.field(description="Of those, with access disabled.")
    chats: int = strawberry.field(description="Their live chat conversations, in total.")
    support_requests: int = strawberry.field(description="Their support tickets, in total.")
    balances: list[Money] = strawberry.field(
        description="Sum of their balances, one per currency, by currency code."
    )


async def prefetch_related(info: Info, clients: list[Client]) -> None:
    """Load the page's staff (managers, blockers) and parents now, one statement each, if selected:
    their resolvers then answer at once instead of one awaitable per row."""
    if not clients:
        return
    wanted = selected_names(info)
    loaders = info.context.loaders
    staff: set[int] = set()
    if "manager" in wanted:
        staff.update(client.manager_id for client in clients if client.manager_id is not None)
    if "blockedBy" in wanted:
        staff.update(
            client.block.blocked_by_id
            for client in clients
            if client.block is not None and client.block.blocked_by_id is not None
        )
    if staff:
        await loaders.staff_user_by_id.load_many(sorted(staff))
    if "parent" in wanted:
        parents = {client.parent_id for client in clients if client.parent_id is not None}
        await loaders.client_by_id.load_many(sorted(parents))


def _scope(info: Info) -> FilterScope:
    viewer = info.context.viewer
    assert viewer is not None  # every field here requires a scope
    return FilterScope(viewer_id=viewer.staff_id, now=info.context.now)


def client_key(id: str | None, login: str | None) -> int | str | None:
    """What `client(id, login)` looks for: the primary key of `id`, or `login` as logins are
    stored; None when no client can match. BAD_USER_INPUT unless exactly one is given, or for
    a malformed ID."""
    if (id is None) == (login is None):
        raise BadUserInput("Give exactly one of `id` and `login`.")
    if id is not None:
        return pk_of(id, "Client")
    assert login is not None
    wanted = login.strip()
    # no login is longer, or holds what PostgreSQL cannot compare (NUL), or is written with a
    # letter that lower-cases to ASCII (the Kelvin sign to "k")
    if not wanted.isascii() or LOGIN_PATTERN.fullmatch(wanted.lower()) is None:
        return None
    return wanted.lower()


@strawberry.type
class ClientQuery:
    @strawberry.field(
        description="One client, by global ID or by login (give exactly one); null if none.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def client(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The client's global ID.")
        ] = None,
        login: Annotated[
            str | None, strawberry.argument(description="The client's login (case-insensitive).")
        ] = None,
    ) -> Client | None:
        key = client_key(id, login)
        loaders = info.context.loaders
        if key is None:
            row = None
        elif isinstance(key, int):
            row = await loaders.client_by_id.load(key)
        else:
            row = await loaders.client_by_login.load(key)
        return client_from_row(info, row) if row is not None else None

    @strawberry.field(
        description="Clients, filtered, searched and sorted, a page at a time (keyset cursors: "
        "deep pages cost what the first costs). Default order: newest first.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def clients(
        self,
        info: Info,
        filter: FilterArg = None,
        search: SearchArg = None,
        order_by: Annotated[
            list[ClientOrder] | None,
            strawberry.argument(description="Sort keys, most significant first; id breaks ties."),
        ] = None,
        first: FirstArg = None,
        after: AfterArg = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> Connection[Client]:
        scope = _scope(info)
        ordering = client_ordering(order_by, now=scope.now)
        page = page_request(ordering, first=first, after=after, last=last, before=before)
        query = (
            select_clients()
            .add_columns(*ordering.computed_columns)
            .where(*client_conditions(filter, search, scope))
        )
        db = info.context.db

        async def count() -> int:
            return int(await db.scalar(count_clients(filter, search, scope)) or 0)

        connection = await paginate(
            db, query, ordering, page, lambda row: client_from_row(info, row), count
        )
        await prefetch_related(info, [edge.node for edge in connection.edges])
        return connection

    @strawberry.field(
        description="Totals for the clients a filter and search select (as `clients` would).",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def client_stats(
        self, info: Info, filter: FilterArg = None, search: SearchArg = None
    ) -> ClientStats:
        scope = _scope(info)
        conditions = client_conditions(filter, search, scope)
        db = info.context.db
        one = (
            await db.execute(
                select(
                    func.count(),
                    func.count().filter(ClientModel.last_activity_at >= scope.now - ACTIVE_WINDOW),
                    func.count().filter(is_blocked(scope.now)),
                    func.count().filter(ClientModel.status == ClientStatus.INACTIVE),
                    func.coalesce(func.sum(ClientModel.chats_count), 0),
                    func.coalesce(func.sum(ClientModel.support_requests_count), 0),
                ).where(*conditions)
            )
        ).one()
        dialect = db.dialect_name
        balances = [
            (row[0], read_exact_sum(row[1:], ClientModel.balance, dialect))
            for row in await db.execute(
                select(ClientModel.currency, *exact_sum(ClientModel.balance, dialect))
                .where(*conditions)
                .group_by(ClientModel.currency)
                .order_by(ClientModel.currency)
            )
        ]
        return ClientStats(
            total=one[0],
            active_last_7_days=one[1],
            blocked=one[2],
            inactive=one[3],
            chats=int(one[4]),
            support_requests=int(one[5]),
            balances=[Money.of(amount, currency) for currency, amount in balances],
        )


@strawberry.type(description="How hard a password is to guess, for a strength bar.")
class PasswordStrength:
    score: int = strawberry.field(
        description=f"0 (trivial) to 4 (very strong), from zxcvbn, for the first "
        f"{SCORED_LENGTH} characters (a longer password is at least as strong as its start)."
    )
    meets_policy: bool = strawberry.field(
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters long and strong enough to be "
        "accepted for a client."
    )
    warning: str | None = strawberry.field(description="What makes it weak, if anything.")
    suggestions: list[str] = strawberry.field(description="How to make it stronger.")
    crack_time: str = strawberry.field(
        description="Time to guess it offline against a slow hash, for people."
    )


@strawberry.type
class PasswordQuery:
    @strawberry.field(
        description=f"Rate a password before setting it (nothing is stored or logged). Its "
        f"first {SCORED_LENGTH} characters are scored: zxcvbn's time grows steeply with length. "
        f"Passwords have {MIN_LENGTH} to {MAX_LENGTH} characters.",
        permission_classes=[IsAuthenticated],
    )
    async def password_strength(
        self,
        info: Info,
        password: Annotated[str, strawberry.argument(description="The password to rate.")],
        hints: Annotated[
            list[str] | None,
            strawberry.argument(description="Words that count as guessable: login, name, e-mail."),
        ] = None,
    ) -> PasswordStrength:
        await info.context.db.idle()  # the scoring may wait its turn: without a connection
        rated = await score_password(
            password, user_inputs=hints or [], min_score=info.context.settings.password_min_score
        )
        return PasswordStrength(
            score=rated.score,
            meets_policy=rated.meets_policy,
            warning=rated.warning,
            suggestions=rated.suggestions,
            crack_time=rated.crack_time,
        )


check_arguments("Query", "clients", filter_problems)
check_arguments("Query", "client_stats", filter_problems)
