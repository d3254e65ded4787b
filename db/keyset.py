"""Keyset ("seek") pagination in SQL: ORDER BY and WHERE clauses for any list of sort keys.

Every ordering ends in the primary key, so positions are unique. NULLs sort after every value
in both directions (so a reversed walk meets them first). When all keys are NOT NULL and go
the same way, the position test is a row comparison, `(k1, k2, id) > (:k1, :k2, :id)`, which
PostgreSQL answers with one index range scan at any depth; otherwise it is the equivalent
OR-chain.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Enum,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlalchemy.types import TypeEngine

from db.base import ExactDecimal, UTCDateTime

MAX_BIGINT = 2**63 - 1
# Text no column holds: NUL (PostgreSQL refuses it) and lone surrogates (not Unicode text).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def parse_column_value(type_: TypeEngine[Any], value: Any) -> Any:
    """A cursor's JSON value as a value of a column of `type_`, exactly as we encode one
    (datetimes in ISO 8601 with an offset, decimals and enums as strings); ValueError for
    anything else, or for a value the column could not hold (so the query cannot fail)."""
    if isinstance(type_, UTCDateTime):
        if not isinstance(value, str):
            raise ValueError("a moment is a string")
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a moment has an offset")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("a moment beyond the years 1-9999 in UTC") from None
    if isinstance(type_, ExactDecimal):
        if not isinstance(value, str) or not value.isascii():  # Decimal reads Arabic-Indic digits
            raise ValueError("a decimal is a string of ASCII digits")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError("not a decimal") from None
        if (
            not number.is_finite()
            or abs(number) >= Decimal(10) ** (type_.precision - type_.scale)
            or abs(number.scaleb(type_.scale)) > MAX_BIGINT  # SQLite keeps a count of units
            or number != number.quantize(type_.quantum)
        ):
            raise ValueError("a decimal the column cannot hold")
        return number
    if isinstance(type_, Boolean):
        if type(value) is not bool:
            raise ValueError("not a boolean")
        return value
    if isinstance(type_, Enum):  # before String: an Enum is a String too
        if not isinstance(value, str) or value not in type_.enums:
            raise ValueError("not one of the enum's values")
        return type_.enum_class(value) if type_.enum_class is not None else value
    if isinstance(type_, String):
        if not isinstance(value, str) or UNSTORABLE.search(value):
            raise ValueError("not text a column holds")
        if type_.length is not None and len(value) > type_.length:
            raise ValueError("longer than the column")
        return value
    if isinstance(type_, Integer):  # counts (an id is read by `parse_id`)
        if type(value) is not int or not -MAX_BIGINT - 1 <= value <= MAX_BIGINT:
            raise ValueError("not an integer a column holds")
        return value
    raise TypeError(f"no cursor values for {type_!r}")  # a sort key we do not support


def parse_id(value: Any) -> int:
    """A primary key from a cursor: a JSON integer from 1 to the largest BIGINT."""
    if type(value) is not int or not 1 <= value <= MAX_BIGINT:
        raise ValueError("not an id")
    return value


@dataclass(frozen=True, slots=True)
class SortKey:
    """One column of an ordering, as the API names it."""

    name: str
    column: ColumnElement[Any]
    descending: bool = False
    nullable: bool = False
    # Its few values in ascending order, where they are known (a status; a computed key's).
    # Leading an ordering with keys after it, a page seeks each value's rows apart by those
    # keys (`Ordering.partitions`): the index of the key after it, or the values' own index.
    values: tuple[Any, ...] = ()
    # Whether other values lie between the known ones (a block's end: its two infinities
    # are known, the ends of blocks in force lie between them).
    between: bool = False
    # Whether one index holds this key, the next one and the id (currency, balance, id): a
    # page seeks it by the row comparison, not by branches.
    composite: bool = False
    # Whether many rows share each value (a country, a credit limit): leading an ordering,
    # the rows sharing the position's value are a branch of their own (`seek_branches`).
    shared: bool = False
    # An expression computed when asked (from the clock): no index holds it, and a query
    # selects it for the cursors.
    computed: bool = False

    @property
    def field(self) -> str:
        """The key of the column in result rows."""
        return str(self.column.key)

    def parse(self, value: Any) -> Any:
        """A cursor's JSON value back in the column's Python type; ValueError if the column
        cannot hold it (NULL included, unless the column is nullable)."""
        if value is None:
            if not self.nullable:
                raise ValueError("NULL in a column that holds none")
            return None
        return parse_column_value(self.column.type, value)


@dataclass(frozen=True, slots=True)
class Branch:
    """One part of a page's rows, apart from the others: its condition, and how many of the
    ordering's first keys have one value in it (its rows are ordered by the keys after)."""

    condition: ColumnElement[bool]
    fixed: int = 0


@dataclass(frozen=True, slots=True)
class Ordering:
    """Sort keys plus the unique tie-breaker, walked forwards or backwards."""

    keys: tuple[SortKey, ...]
    tiebreaker: KeyedColumnElement[Any]
    descending: bool = False  # the tie-breaker's direction when there are no keys

    @property
    def signature(self) -> str:
        """What a cursor must carry to be used with this ordering."""
        if not self.keys:
            return f"ID:{'DESC' if self.descending else 'ASC'}"
        return ",".join(f"{k.name}:{'DESC' if k.descending else 'ASC'}" for k in self.keys)

    @property
    def computed_columns(self) -> list[ColumnElement[Any]]:
        """The keys' columns that are expressions, which a query must select for cursors."""
        return [key.column for key in self.keys if key.computed]

    @property
    def time_dependent(self) -> bool:
        """Whether a key is computed when asked: its SQL holds the moment of the request."""
        return bool(self.computed_columns)

    @property
    def partitioned(self) -> bool:
        """Whether a page seeks each value of the first key apart (`partitions`): led by a
        key of known values, computed or with keys after it (one index holds a stored key
        with the id after it)."""
        if not self.keys or not self.keys[0].values:
            return False
        return self.keys[0].computed or len(self.keys) > 1

    def partitions(
        self,
        values: Sequence[Any] | None,
        tiebreaker_value: Any,
        *,
        backwards: bool = False,
        nested: bool = False,
    ) -> list["Branch"] | None:
        """For a partitioned ordering: per value of the first key (and per range between its
        known values, if other values lie there), in walking order, its rows past the
        position (from the start when `values` is None) — each seeks an index by the keys
        after it (a range: by the first key's index). None for other orderings. `nested`:
        the keys after others (rows that share those): a key of known values alone is
        partitioned too, for the database may know its value from the others' (a client
        who can log in is ACTIVE) and then order by the id alone, where a position given
        as both would not bound the id."""
        known = nested and bool(self.keys) and bool(self.keys[0].values)
        if not (self.partitioned or known):
            return None
        key = self.keys[0]
        column = key.column
        ascending = key.descending == backwards
        # the segments in walking order: ("value", v) or ("range", low, high)
        segments: list[tuple[Any, ...]] = []
        for index, value in enumerate(key.values):
            if index and key.between:
                segments.append(("range", key.values[index - 1], value))
            segments.append(("value", value))
        if not ascending:
            segments.reverse()
        branches = [self._segment(segment) for segment in segments]
        if values is None:
            return branches
        position = values[0]
        start = next(
            n
            for n, segment in enumerate(segments)
            if (segment[0] == "value" and segment[1] == position)
            or (segment[0] == "range" and segment[1] < position < segment[2])
        )
        segment = segments[start]
        if segment[0] == "range":  # the range's rows past the position, by the key's index
            past = self.after(values, tiebreaker_value, backwards=backwards)
            here = [Branch(and_(branches[start].condition, past))]
        else:
            within = self.after_first(1).past(
                values[1:], tiebreaker_value, backwards=backwards, after_computed=key.computed
            )
            equal = _equal(column, position)
            here = [Branch(and_(equal, part.condition), 1 + part.fixed) for part in within]
        return [*here, *branches[start + 1 :]]

    def _segment(self, segment: tuple[Any, ...]) -> "Branch":
        """All rows of a segment of the first key's values (see `partitions`)."""
        column = self.keys[0].column
        if segment[0] == "value":
            return Branch(_equal(column, segment[1]), 1)
        low, high = _bind(segment[1], column), _bind(segment[2], column)
        return Branch(and_(column > low, column < high))

    def past(
        self,
        values: Sequence[Any],
        tiebreaker_value: Any,
        *,
        backwards: bool = False,
        after_computed: bool = False,
    ) -> list["Branch"]:
        """The rows past a position among rows that share the keys before these: as branches
        that each seek an index, or one condition (`after`). A branch per value of the first
        key where it or the key before is computed (`partitions`): no index holds a computed
        key, and rows sharing one may share a stored key's value the database infers from
        its expression (who can log in is ACTIVE), which it then leaves out of the order."""
        if self.keys and (self.keys[0].computed or after_computed):
            partitions = self.partitions(values, tiebreaker_value, backwards=backwards, nested=True)
            if partitions is not None:
                return partitions
        branches = self.seek_branches(values, tiebreaker_value, backwards=backwards, nested=True)
        return branches or [Branch(self.after(values, tiebreaker_value, backwards=backwards))]

    def expanded(self, branches: Sequence["Branch"], *, backwards: bool) -> list["Branch"]:
        """Each branch whose rows are ordered by keys led by a computed one (CAN_LOGIN after
        COUNTRY: each country's clients who can log in, then those who cannot) split in a
        branch per value: each then ordered by the keys after it, which an index holds."""
        found: list[Branch] = []
        for branch in branches:
            rest = self.after_first(branch.fixed)
            parts = None
            if branch.fixed and rest.keys and rest.keys[0].computed:
                parts = rest.partitions(None, None, backwards=backwards)
            if parts is None:
                found.append(branch)
                continue
            found += [
                Branch(and_(branch.condition, part.condition), branch.fixed + part.fixed)
                for part in parts
            ]
        return found

    def after_first(self, count: int) -> "Ordering":
        """The ordering of the keys after the first `count` (rows that share those)."""
        return Ordering(self.keys[count:], self.tiebreaker, self.tiebreaker_descending)

    @property
    def tiebreaker_descending(self) -> bool:
        """The tie-breaker follows the last key, so one index serves the whole ordering."""
        return self.keys[-1].descending if self.keys else self.descending

    def order_by(
        self, *, backwards: bool = False, source: FromClause | None = None
    ) -> list[ColumnElement[Any]]:
        """ORDER BY terms; NULLs last when walking forwards, first when walking backwards.
        With `source`, the terms name that subquery's columns instead of the table's."""
        terms: list[ColumnElement[Any]] = []
        for key in self.keys:
            column = source.c[key.field] if source is not None else key.column
            descending = key.descending != backwards
            term = column.desc() if descending else column.asc()
            if key.nullable:
                term = term.nulls_first() if backwards else term.nulls_last()
            terms.append(term)
        tie = source.c[self.tiebreaker.key] if source is not None else self.tiebreaker
        tie_descending = self.tiebreaker_descending != backwards
        terms.append(tie.desc() if tie_descending else tie.asc())
        return terms

    def seek_branches(
        self,
        values: Sequence[Any],
        tiebreaker_value: Any,
        *,
        backwards: bool = False,
        nested: bool = False,
        where: Sequence[ColumnElement[bool]] | None = None,
        most: int = 0,
    ) -> list["Branch"] | None:
        """`after` as disjoint branches that each seek an index, or None if there are none.

        For one nullable key, "past (v, id)" is `(k, id) > (v, id) OR k IS NULL`, and an OR
        stops PostgreSQL from seeking: it scans from the start of the index. As separate
        branches (`UNION ALL`, each ordered and limited) every part is an index range scan.

        For several keys, the rows that share the position's first value are a branch of
        their own, ordered by the keys after it (their index, filtered by that value, or the
        value's rows sorted: whichever the database finds cheaper), so a position deep in
        a value many clients share costs what page 1 does; then the later values (the first
        key's index, sorting each value's ties as it goes), then the NULLs if they follow.
        Below the first key (`nested`) the keys after it are one branch.

        Given the query's conditions (`where`) and the most rows a page reads (`most`), the
        value after the position's is found (one index step) and its clients are a branch
        read by the next key too; the values after that are read only if that one has
        fewer than `most` clients (a condition PostgreSQL tests before starting the branch),
        so a page never sorts a whole value's clients it does not need.
        """
        if not self.keys:
            return None
        key, value = self.keys[0], values[0]
        column = key.column
        if len(self.keys) > 1:
            if nested or key.composite or not (key.shared or key.nullable):
                return None
            parts = self.after_first(1).past(values[1:], tiebreaker_value, backwards=backwards)

            def sharing(condition: ColumnElement[bool]) -> list[Branch]:
                return [Branch(and_(condition, p.condition), 1 + p.fixed) for p in parts]

            if value is None:
                # Forwards only NULLs follow; backwards, every value too. The NULLs are a
                # value many clients may share (never active, no end of access): read by
                # the next key, like any shared value, not all sorted.
                nulls = sharing(column.is_(None))
                if not backwards:
                    return nulls
                valued = column.is_not(None)
                if not key.shared or where is None:
                    return [*nulls, Branch(valued)]
                # the last value's clients by the next key, the values before it only if
                # needed (as after a value: `_next_group`)
                greater = key.descending == backwards
                return [*nulls, *_next_group(column, [valued, *where], greater=greater, most=most)]
            if backwards and not key.shared:
                return None  # the NULLs are behind: `after` bounds the first key
            bound = _bind(value, column)
            greater = key.descending == backwards
            past = column > bound if greater else column < bound
            nulls_after: list[Branch] = []
            if key.nullable and not backwards:
                # The NULLs follow every value: read (by the next key) only if the values
                # strictly past the position cannot fill the page. (Where they may lie far
                # along the next key's index: the never active among the recently updated.)
                unset: ColumnElement[bool] = column.is_(None)
                if where is not None:
                    beyond = select(literal(1)).where(past, *where).limit(most)
                    unset = and_(unset, _count(beyond) < most)
                nulls_after = [Branch(unset, 1)]
            if not key.shared:  # few share a value: the first key's index from the position
                here = column >= bound if greater else column <= bound
                after = self.after(values, tiebreaker_value, backwards=backwards)
                return [Branch(and_(here, after)), *nulls_after]
            if where is None:
                return [*sharing(column == bound), Branch(past), *nulls_after]
            group = _next_group(column, [past, *where], greater=greater, most=most)
            return [*sharing(column == bound), *group, *nulls_after]
        if not key.nullable:
            return None
        tie = self.tiebreaker
        bound = _bind(tiebreaker_value, tie)
        greater = key.descending == backwards
        if value is None:
            nulls_past = and_(column.is_(None), tie > bound if greater else tie < bound)
            # Forwards NULLs come last, so only later NULLs follow; backwards, every value does.
            # (the one key's index holds the NULLs in the id's order: no key is fixed)
            if backwards:
                return [Branch(nulls_past), Branch(column.is_not(None))]
            return [Branch(nulls_past)]
        pair, bounds = tuple_(column, tie), tuple_(_bind(value, column), bound)
        seek = pair > bounds if greater else pair < bounds  # leaves NULLs out by itself
        return [Branch(seek)] if backwards else [Branch(seek), Branch(column.is_(None))]

    def first_branches(
        self, *, backwards: bool, where: Sequence[ColumnElement[bool]], most: int
    ) -> list["Branch"] | None:
        """The first page (no cursor, walking forwards) of an ordering led by a column many
        clients share, as `seek_branches` reads the value after a position's: the first
        value's clients by the next key, the values after it only if that one has fewer
        than `most` clients, the NULLs only if all values together have. None otherwise."""
        if len(self.keys) < 2 or backwards:
            return None
        key = self.keys[0]
        if not key.shared or key.composite:
            return None
        column, greater = key.column, not key.descending
        branches = _next_group(column, list(where), greater=greater, most=most)
        if key.nullable:  # NULLs last: read only if the values cannot fill the page
            valued = select(literal(1)).where(column.is_not(None), *where).limit(most)
            enough = _count(valued) >= most
            branches.append(Branch(and_(column.is_(None), ~enough), 1))
        return branches

    def after(
        self,
        values: Sequence[Any],
        tiebreaker_value: Any,
        *,
        backwards: bool = False,
        inclusive: bool = False,
    ) -> ColumnElement[bool]:
        """Rows past the position (values, tiebreaker_value) in the walking order."""
        if all(not k.nullable for k in self.keys) and (
            len({k.descending for k in self.keys} | {self.tiebreaker_descending}) == 1
        ):
            columns = [*(k.column for k in self.keys), self.tiebreaker]
            bounds = [
                *(_bind(v, k.column) for k, v in zip(self.keys, values, strict=True)),
                _bind(tiebreaker_value, self.tiebreaker),
            ]
            greater = self.tiebreaker_descending == backwards
            left, right = tuple_(*columns), tuple_(*bounds)
            if greater:
                return left >= right if inclusive else left > right
            return left <= right if inclusive else left < right

        clauses: list[ColumnElement[bool]] = []
        equal_so_far: list[ColumnElement[bool]] = []
        for key, value in zip(self.keys, values, strict=True):
            clauses.append(and_(*equal_so_far, _past(key, value, backwards)))
            equal_so_far.append(_equal(key.column, value))
        tie = self.tiebreaker
        bound = _bind(tiebreaker_value, tie)
        if self.tiebreaker_descending == backwards:
            last = tie >= bound if inclusive else tie > bound
        else:
            last = tie <= bound if inclusive else tie < bound
        clauses.append(and_(*equal_so_far, last))
        lead = _lead_bound(self.keys, values, backwards) if self.keys else None
        # The OR-chain alone gives PostgreSQL nothing to seek by, so a deep page would scan
        # from the start of the first key's index; the bound on that key (implied by the
        # chain) starts the scan at the position.
        return or_(*clauses) if lead is None else and_(lead, or_(*clauses))


def _count(rows: Select[Any]) -> ColumnElement[int]:
    """How many rows `rows` gives, as a value (a subquery of its own: not correlated)."""
    counted = select(func.count()).select_from(rows.subquery()).correlate(None)
    return counted.scalar_subquery()


# A value's clients are read by the next key's index (filtered by the value) when at least
# this many hold it: then the filter skips at most (all clients / this) rows per row read.
# Fewer, they are read by the value's own index and sorted.
MANY = 2_000


def _next_group(
    column: ColumnElement[Any],
    conditions: list[ColumnElement[bool]],
    *,
    greater: bool,
    most: int,
) -> list["Branch"]:
    """The rows `conditions` select from the first value of `column` on, in the walking
    order, for a page of at most `most` rows: the first value's rows (by the next key's
    index if many hold it, else by the value's own index, sorted), and the later values'
    only if the first one's cannot fill the page. Which branches run is decided once, by
    one-time filters (subqueries without the outer rows), before any of them starts: the
    database never sorts or scans what the page does not need. The subqueries read the
    table anew (`correlate(None)`): the conditions name their own rows."""
    pick = func.min if greater else func.max
    value = select(pick(column)).where(*conditions).correlate(None).scalar_subquery()
    holding = _count(select(literal(1)).where(column == value, *conditions).limit(MANY))
    beyond = column > value if greater else column < value
    # (the few as a range, not an equality: PostgreSQL would take the value for a constant
    # and read the next key's index, which is what a rare value must not be read by)
    few = and_(column >= value, column <= value)
    return [
        Branch(and_(column == value, holding >= MANY), 1),
        Branch(and_(few, holding < MANY)),
        Branch(and_(beyond, holding < most)),
    ]


def _bind(value: Any, column: ColumnElement[Any]) -> ColumnElement[Any]:
    # Typed like the column, so its bind processing applies (UTC datetimes, exact decimals).
    return literal(value, type_=column.type)


def _equal(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == _bind(value, column)


def _lead_bound(
    keys: Sequence[SortKey], values: Sequence[Any], backwards: bool
) -> ColumnElement[bool] | None:
    """A seekable condition on the first key that every row past a position with these
    values meets (the position's own value included), or None where there is none: walking
    forwards from a value of a nullable key, the NULLs after every value are past too. A
    composite first key is bounded with the key after it, as its index holds them: the
    scan starts at the position's amount, not at the start of its currency."""
    key, value = keys[0], values[0]
    column = key.column
    if key.composite and len(keys) > 1 and not keys[1].nullable:
        pair = tuple_(column, keys[1].column)
        bounds = tuple_(_bind(value, column), _bind(values[1], keys[1].column))
        return pair >= bounds if key.descending == backwards else pair <= bounds
    if value is None:
        # Forwards, only NULLs follow a NULL; backwards, everything does.
        return None if backwards else column.is_(None)
    if key.nullable and not backwards:
        return None
    bound = _bind(value, column)
    return column >= bound if key.descending == backwards else column <= bound


def _past(key: SortKey, value: Any, backwards: bool) -> ColumnElement[bool]:
    """Values of `key` strictly past `value` in the walking order (NULLs last forwards)."""
    column = key.column
    if value is None:
        # Forwards, NULLs come last: nothing is past a NULL. Backwards: every value is.
        return column.is_not(None) if backwards else false()
    bound = _bind(value, column)
    greater = key.descending == backwards
    past = column > bound if greater else column < bound
    return or_(past, column.is_(None)) if key.nullable and not backwards else past
