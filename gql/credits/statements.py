"""The ledger as an accountant reads it: a client's entries by kind and period, and a
statement for a period — opening balance, the entries, totals per kind, closing balance —
in the client's currency with its minor units."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, func, select

from db.keyset import Ordering
from db.models import CreditEntry as CreditEntryModel
from db.queries import exact_sum, read_exact_sum
from gql.arguments import Problem, check_arguments
from gql.context import Info
from gql.credits.types import CreditEntry
from gql.enums import EntryKind, Scope
from gql.loaders import entry_filter
from gql.node import pk_of
from gql.pagination import (
    AfterArg,
    BeforeArg,
    Connection,
    FirstArg,
    LastArg,
    PageRequest,
    build_connection,
    fetch_pages,
    page_request,
)
from gql.permissions import HasScope
from gql.scalars import Money
from services.errors import ErrorCode

ENTRIES = CreditEntryModel.__table__
OLDEST_ENTRY_FIRST = Ordering(keys=(), tiebreaker=ENTRIES.c.id)

KindsArg = Annotated[
    list[EntryKind] | None,
    strawberry.argument(description="Only entries of these kinds (none given: all)."),
]
FromArg = Annotated[
    datetime | None,
    strawberry.argument(name="from", description="Only entries made at or after this moment."),
]
ToArg = Annotated[
    datetime | None, strawberry.argument(description="Only entries made before this moment.")
]


def period_problems(arguments: dict[str, Any]) -> list[Problem]:
    """`from` must come before `to`."""
    start, end = arguments.get("from_"), arguments.get("to")
    if isinstance(start, datetime) and isinstance(end, datetime) and start >= end:
        return [Problem(["from"], ErrorCode.OUT_OF_RANGE, "`from` must be before `to`.")]
    return []


def entry_conditions(
    client_id: int,
    kinds: list[EntryKind] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """A client's entries of `kinds` made in [start, end)."""
    filter = (tuple(sorted(kinds or ())), start, end)
    return [ENTRIES.c.client_id == client_id, *entry_filter(filter)]


async def entries_connection(
    info: Info,
    client_id: int,
    conditions: list[ColumnElement[bool]],
    ordering: Ordering,
    page: PageRequest,
) -> Connection[CreditEntry]:
    """A page of the entries that meet `conditions` (one statement; the count when asked)."""
    db = info.context.db
    query = select(ENTRIES).where(*conditions)
    pages = await fetch_pages(
        db, query, ENTRIES.c.client_id, [client_id], ordering, page, kept=False
    )
    rows, more = pages[client_id]

    async def count() -> int:
        return int(await db.scalar(select(func.count()).select_from(ENTRIES).where(*conditions)))

    return build_connection(db, query, ordering, page, rows, more, CreditEntry.from_row, count)


@strawberry.type(description="The entries of one kind in a statement's period.")
class KindTotal:
    kind: EntryKind = strawberry.field(description="The kind.")
    count: int = strawberry.field(description="How many entries.")
    amount: Money = strawberry.field(description="Their sum.")


@strawberry.type(
    description="A client's account for a period, as an accountant reads it: the opening "
    "balance, the entries in the period, totals per kind, and the closing balance "
    "(opening + the entries = closing), in the client's currency."
)
class CreditStatement:
    currency: str = strawberry.field(description="The client's currency (ISO 4217).")
    start: datetime = strawberry.field(name="from", description="The period's start (included).")
    end: datetime = strawberry.field(name="to", description="The period's end (not included).")
    opening_balance: Money = strawberry.field(description="The balance at `from`.")
    closing_balance: Money = strawberry.field(description="The balance at `to`.")
    totals: list[KindTotal] = strawberry.field(
        description="Per kind with entries in the period, their count and sum."
    )
    client_id: strawberry.Private[int]

    @strawberry.field(
        description="The period's entries (`createdAt` at or after `from`, before `to`) in "
        "the order they were posted: the ledger's own order, oldest first."
    )
    async def entries(
        self,
        info: Info,
        first: FirstArg = None,
        after: AfterArg = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> Connection[CreditEntry]:
        ordering = OLDEST_ENTRY_FIRST
        page = page_request(ordering, first=first, after=after, last=last, before=before)
        conditions = entry_conditions(self.client_id, start=self.start, end=self.end)
        return await entries_connection(info, self.client_id, conditions, ordering, page)


@strawberry.type
class StatementQuery:
    @strawberry.field(
        description="A client's statement for a period: null if there is no such client.",
        permission_classes=[HasScope(Scope.CLIENTS_READ)],
    )
    async def credit_statement(
        self,
        info: Info,
        client_id: Annotated[strawberry.ID, strawberry.argument(description="The client.")],
        from_: Annotated[
            datetime, strawberry.argument(name="from", description="The period's start.")
        ],
        to: Annotated[
            datetime, strawberry.argument(description="The period's end (not included).")
        ],
    ) -> CreditStatement | None:
        pk = pk_of(client_id, "Client")
        row = await info.context.loaders.client_by_id.load(pk) if pk is not None else None
        if row is None:
            return None
        db = info.context.db
        dialect = db.dialect_name
        amount = ENTRIES.c.amount
        before = await db.execute(
            select(*exact_sum(amount, dialect)).where(*entry_conditions(row.id, end=from_))
        )
        opening = read_exact_sum(before.one(), amount, dialect)
        per_kind = await db.execute(
            select(ENTRIES.c.kind, func.count(), *exact_sum(amount, dialect))
            .where(*entry_conditions(row.id, start=from_, end=to))
            .group_by(ENTRIES.c.kind)
            .order_by(ENTRIES.c.kind)
        )
        totals = [
            (kind, int(n), read_exact_sum(sums, amount, dialect)) for kind, n, *sums in per_kind
        ]
        closing = opening + sum((total for _, _, total in totals), Decimal(0))
        currency = row.currency
        return CreditStatement(
            currency=currency,
            start=from_,
            end=to,
            opening_balance=Money.of(opening, currency),
            closing_balance=Money.of(closing, currency),
            totals=[
                KindTotal(kind=kind, count=n, amount=Money.of(total, currency))
                for kind, n, total in totals
            ],
            client_id=row.id,
        )


check_arguments("Query", "credit_statement", period_problems)
check_arguments("Client", "credit_entries", period_problems)
