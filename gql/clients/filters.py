"""How the clients list can be filtered: one small function per `ClientFilter` field.

Fields combine with AND; the values of a list field combine with OR. Text filters match a
substring, ignoring case; the phone filter matches digits.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased
from strawberry.scalars import JSON

from db.enums import TallyDimension
from db.json_values import json_equals, json_is_text, json_text
from db.models import (
    CONNECTION_BITS,
    Client,
    ClientConnection,
    ClientTally,
    CustomFieldDefinition,
    CustomFieldValue,
)
from db.queries import billing_mode_column
from db.search import SearchMatch, like_pattern
from gql.arguments import Problem, problems_error
from gql.enums import ClientStatus, ConnectionStatus, ConnectionType
from gql.node import pk_of
from gql.scalars import Unreadable
from services.custom_fields import MAX_NUMBER
from services.errors import DomainError, ErrorCode
from services.money import check_stored_amount
from services.validation import UNSTORABLE, Checks, normalize_country, normalize_currency

MAX_TEXT = 100
MAX_IDS = 500
MAX_CUSTOM_FIELD_CONDITIONS = 10


@strawberry.enum(description="Whose clients: relative to the viewer.")
class ClientOwnership(Enum):
    OWN = strawberry.enum_value("OWN", description="Managed by the viewer.")
    OTHERS = strawberry.enum_value("OTHERS", description="Managed by another staff user.")
    UNASSIGNED = strawberry.enum_value("UNASSIGNED", description="Managed by nobody.")
    OWN_AND_SUB_ACCOUNTS = strawberry.enum_value(
        "OWN_AND_SUB_ACCOUNTS",
        description="Managed by the viewer, or a sub-account of a client the viewer manages: "
        "exactly the clients a manager may change.",
    )


@strawberry.enum(description="How `connectionStatus` applies to a client's connections.")
class ConnectionMatch(Enum):
    ANY = strawberry.enum_value(
        "ANY", description="At least one of them (of `connectionTypes`, if given) is in it."
    )
    ALL = strawberry.enum_value(
        "ALL",
        description="Every one of them (of `connectionTypes`, if given) is in it, and there is "
        "at least one.",
    )


@strawberry.input(
    description="A condition on one custom field's value; give exactly one of `equals`, "
    "`contains` and `isEmpty`."
)
class CustomFieldCondition:
    key: str = strawberry.field(description="The field's key (see `customFieldDefinitions`).")
    equals: JSON | None = strawberry.field(
        default=None,
        description="Holds exactly this value: a string, number or boolean of the field's type "
        '(a DATE as "YYYY-MM-DD", a SELECT as the option).',
    )
    contains: str | None = strawberry.field(
        default=None, description="Holds text containing this (any case)."
    )
    is_empty: bool | None = strawberry.field(
        default=None, description="Holds no value (true), or holds one (false)."
    )


def _doc(text: str) -> Any:
    return strawberry.field(default=None, description=text)


@strawberry.input(
    description="Conditions on clients; all given fields must hold (AND), a list field "
    "matches any of its values (OR). Ranges: `…After` and `…Above` are inclusive lower "
    "bounds, `…Before` and `…Below` exclusive upper bounds."
)
class ClientFilter:
    manager_ids: list[strawberry.ID] | None = _doc("Managed by any of these staff users.")
    ownership: list[ClientOwnership] | None = _doc(
        "OWN: managed by the viewer; OTHERS: by another manager; UNASSIGNED: by nobody."
    )
    blocked: bool | None = _doc("Blocked now (an expired block does not count), or not.")
    statuses: list[ClientStatus] | None = _doc("In any of these statuses.")
    countries: list[str] | None = _doc("In any of these countries (ISO 3166-1 alpha-2).")
    currencies: list[str] | None = _doc("Using any of these currencies (ISO 4217).")
    login: str | None = _doc("Login contains this text.")
    email: str | None = _doc("E-mail contains this text (any case).")
    phone: str | None = _doc("Phone contains these digits (other characters are ignored).")
    connection_types: list[ConnectionType] | None = _doc("Has a connection of any of these types.")
    connection_status: ConnectionStatus | None = _doc(
        "Connections in this status (of the given types, if any): at least one, or all of "
        "them, as `connectionMatch` says."
    )
    connection_match: ConnectionMatch | None = _doc(
        "How `connectionStatus` applies: ANY (the default) or ALL of the client's connections."
    )
    has_connections: bool | None = _doc("Has at least one connection (true), or none (false).")
    created_after: datetime | None = _doc("Created at or after.")
    created_before: datetime | None = _doc("Created before.")
    updated_after: datetime | None = _doc("Last changed at or after (for incremental syncs).")
    updated_before: datetime | None = _doc("Last changed before.")
    last_activity_after: datetime | None = _doc("Last active at or after.")
    last_activity_before: datetime | None = _doc(
        "Last active before. Clients never active are not included: for dormant accounts, "
        "use `inactiveSince`."
    )
    inactive_since: datetime | None = _doc(
        "No activity since this moment: last active before it, or never active."
    )
    never_active: bool | None = _doc("Never active (true), or active at least once (false).")
    parent_id: strawberry.ID | None = _doc("Sub-accounts of this client.")
    has_parent: bool | None = _doc("Is a sub-account (true) or a top-level client (false).")
    balance_below: Decimal | None = _doc("Balance below this amount.")
    balance_above: Decimal | None = _doc("Balance at or above this amount.")
    valid_till_before: datetime | None = _doc("Paid access ends before.")
    valid_till_after: datetime | None = _doc("Paid access ends at or after.")
    ids: list[strawberry.ID] | None = _doc(f"Only these clients (at most {MAX_IDS}).")
    custom_fields: list[CustomFieldCondition] | None = _doc(
        f"Conditions on custom field values, all of which must hold (at most "
        f"{MAX_CUSTOM_FIELD_CONDITIONS})."
    )


@dataclass(frozen=True, slots=True)
class FilterScope:
    """What filters relative to the request need: who is asking, and when."""

    viewer_id: int
    now: datetime


def is_blocked(now: datetime) -> ColumnElement[bool]:
    """A block in force at `now`: one that ends later (the index on its end serves it)."""
    return Client.__table__.c.block_ends_at > now


def can_log_in(now: datetime) -> ColumnElement[bool]:
    """`canLogin` at `now`: ACTIVE, not blocked, paid access not over (in Billing Mode)."""
    return and_(
        Client.status == ClientStatus.ACTIVE,
        Client.__table__.c.block_ends_at <= now,
        or_(Client.valid_till.is_(None), Client.valid_till > now, ~billing_mode_column()),
    )


def _text(value: str, field: str) -> str | None:
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise DomainError(
            ErrorCode.TOO_LONG, f"`{field}` is longer than {MAX_TEXT} characters.", field.split(".")
        )
    if UNSTORABLE.search(value):  # no client's data holds it, and PostgreSQL refuses it
        raise DomainError(
            ErrorCode.INVALID, f"`{field}` contains a NUL or a lone surrogate.", field.split(".")
        )
    return value or None


def _codes(values: list[str], normalize: Callable[..., str], field: str) -> list[str]:
    """Each value normalized; every one that is not a code reported at once."""
    checks = Checks()
    codes = [
        checks.run(normalize, value, field=["filter", field, str(n)])
        for n, value in enumerate(values)
    ]
    checks.raise_if_any()
    return [code for code in codes if code is not None]


def phone_digits(value: str) -> str:
    """The digits of a phone fragment as E.164 writes them: no leading zeros (trunk or 00
    prefixes) and no "(0)" trunk marker, as in "+49 (0)151"."""
    return re.sub(r"\D", "", value.replace("(0)", "")).lstrip("0")


def by_manager_ids(values: list[strawberry.ID], scope: FilterScope) -> ColumnElement[bool]:
    ids = [pk for pk in (pk_of(value, "StaffUser") for value in values) if pk is not None]
    return Client.manager_id.in_(ids) if ids else false()


def by_ownership(values: list[ClientOwnership], scope: FilterScope) -> ColumnElement[bool]:
    own = Client.manager_id == scope.viewer_id
    parents = aliased(Client)
    own_parents = select(parents.id).where(parents.manager_id == scope.viewer_id)
    conditions = {
        ClientOwnership.OWN: own,
        ClientOwnership.OTHERS: and_(
            Client.manager_id.is_not(None), Client.manager_id != scope.viewer_id
        ),
        ClientOwnership.UNASSIGNED: Client.manager_id.is_(None),
        # services.clients.may_change, as a condition
        ClientOwnership.OWN_AND_SUB_ACCOUNTS: or_(own, Client.parent_id.in_(own_parents)),
    }
    return or_(*(conditions[value] for value in set(values))) if values else false()


def by_blocked(value: bool, scope: FilterScope) -> ColumnElement[bool]:
    blocked = is_blocked(scope.now)
    return blocked if value else ~blocked


def by_statuses(values: list[ClientStatus], scope: FilterScope) -> ColumnElement[bool]:
    # Written into the SQL (two values, so few statements): PostgreSQL then knows how many
    # clients it keeps, and plans a keyset page once instead of on every request.
    statuses: BindParameter[Any] = bindparam(
        None, list(values), expanding=True, literal_execute=True
    )
    return Client.status.in_(statuses)


def by_countries(values: list[str], scope: FilterScope) -> ColumnElement[bool]:
    return Client.country.in_(_codes(values, normalize_country, "countries"))


def by_currencies(values: list[str], scope: FilterScope) -> ColumnElement[bool]:
    return Client.currency.in_(_codes(values, normalize_currency, "currencies"))


def by_login(value: str, scope: FilterScope) -> ColumnElement[bool]:
    text = _text(value, "filter.login")
    # logins are stored lower case: LIKE on the lower-cased text, which the index serves
    return Client.login.like(like_pattern(text.lower()), escape="\\") if text else true()


def by_email(value: str, scope: FilterScope) -> ColumnElement[bool]:
    text = _text(value, "filter.email")
    return Client.email.ilike(like_pattern(text), escape="\\") if text else true()


def by_phone(value: str, scope: FilterScope) -> ColumnElement[bool]:
    text = _text(value, "filter.phone")
    if not text:
        return true()
    digits = phone_digits(text)
    if not digits:
        raise DomainError(
            ErrorCode.INVALID, "`filter.phone` needs at least one digit.", ["filter", "phone"]
        )
    return Client.phone.like(like_pattern(digits), escape="\\")


def by_connections(
    types: list[ConnectionType] | None,
    status: ConnectionStatus | None,
    match: ConnectionMatch | None = None,
) -> ColumnElement[bool]:
    """Has a connection of one of `types` (any, when None) in `status` (any, when None);
    with ALL, none of those types in another status."""
    if status is None:  # the types alone: the bits the triggers keep (CONNECTION_BITS)
        return has_connection_types(types)
    of_types: list[ColumnElement[bool]] = [ClientConnection.client_id == Client.id]
    if types:
        of_types.append(ClientConnection.type.in_(types))
    if match is ConnectionMatch.ALL:
        return and_(
            exists(select(ClientConnection.id).where(*of_types)),
            ~exists(
                select(ClientConnection.id).where(*of_types, ClientConnection.status != status)
            ),
        )
    return exists(select(ClientConnection.id).where(*of_types, ClientConnection.status == status))


def has_connection_types(types: list[ConnectionType] | None) -> ColumnElement[bool]:
    """Has a connection of one of `types` (of any type, when None), read from the client's
    row: `clients.connection_types` holds a bit per type (CONNECTION_BITS)."""
    bits = Client.__table__.c.connection_types
    if not types:
        return bits != 0
    mask = sum(CONNECTION_BITS[ConnectionType(t).value] for t in set(types))
    return bits.bitwise_and(mask) != 0


def by_has_connections(value: bool, scope: FilterScope) -> ColumnElement[bool]:
    bits = Client.__table__.c.connection_types
    return bits != 0 if value else bits == 0


def by_ids(values: list[strawberry.ID], scope: FilterScope) -> ColumnElement[bool]:
    if len(values) > MAX_IDS:
        raise DomainError(
            ErrorCode.TOO_MANY, f"`filter.ids` takes at most {MAX_IDS} IDs.", ["filter", "ids"]
        )
    ids = [pk for pk in (pk_of(value, "Client") for value in values) if pk is not None]
    return Client.id.in_(ids) if ids else false()


def by_inactive_since(value: datetime, scope: FilterScope) -> ColumnElement[bool]:
    return or_(Client.last_activity_at.is_(None), Client.last_activity_at < value)


def by_never_active(value: bool, scope: FilterScope) -> ColumnElement[bool]:
    column = Client.last_activity_at
    return column.is_(None) if value else column.is_not(None)


def by_custom_fields(
    conditions: list[CustomFieldCondition], scope: FilterScope
) -> ColumnElement[bool]:
    if len(conditions) > MAX_CUSTOM_FIELD_CONDITIONS:
        raise DomainError(
            ErrorCode.TOO_MANY,
            f"`filter.customFields` takes at most {MAX_CUSTOM_FIELD_CONDITIONS} conditions.",
            ["filter", "customFields"],
        )
    checks = Checks()
    parts = [
        checks.run(_custom_field, condition, ["filter", "customFields", str(n)])
        for n, condition in enumerate(conditions)
    ]
    checks.raise_if_any()
    return and_(*(part for part in parts if part is not None))


def _custom_field(condition: CustomFieldCondition, field: list[str]) -> ColumnElement[bool]:
    """One custom field condition; unknown keys match no value (so `isEmpty: true` matches
    every client)."""
    given = [
        name for name in ("equals", "contains", "is_empty") if getattr(condition, name) is not None
    ]
    if len(given) != 1:
        raise DomainError(
            ErrorCode.INVALID, "Give exactly one of `equals`, `contains` and `isEmpty`.", field
        )
    key = _text(condition.key, ".".join([*field, "key"])) or ""
    value = CustomFieldValue.value
    held = [
        CustomFieldValue.client_id == Client.id,
        CustomFieldValue.definition_id
        == select(CustomFieldDefinition.id)
        .where(CustomFieldDefinition.key == key)
        .scalar_subquery(),
        json_text(value).is_not(None),  # a JSON null is no value
        json_text(value) != "",
    ]
    if condition.is_empty is not None:
        some = exists(select(CustomFieldValue.client_id).where(*held))
        return ~some if condition.is_empty else some
    if condition.contains is not None:
        text = _text(condition.contains, ".".join([*field, "contains"]))
        if not text:
            return exists(select(CustomFieldValue.client_id).where(*held))
        matches = json_text(value).ilike(like_pattern(text), escape="\\")
        # text values only: a boolean or number reads differently on each database
        return exists(select(CustomFieldValue.client_id).where(*held, json_is_text(value), matches))
    wanted = condition.equals
    if (isinstance(wanted, float) and not math.isfinite(wanted)) or not isinstance(
        wanted, str | int | float | bool
    ):
        raise DomainError(
            ErrorCode.INVALID, "`equals` takes a string, a number or a boolean.", [*field, "equals"]
        )
    if isinstance(wanted, str):
        wanted = _text(wanted, ".".join([*field, "equals"])) or ""
    elif not isinstance(wanted, bool) and abs(wanted) > MAX_NUMBER:
        return false()  # no value is that large
    return exists(select(CustomFieldValue.client_id).where(*held, json_equals(value, wanted)))


def by_parent_id(value: strawberry.ID, scope: FilterScope) -> ColumnElement[bool]:
    pk = pk_of(value, "Client")
    return Client.parent_id == pk if pk is not None else false()


def by_has_parent(value: bool, scope: FilterScope) -> ColumnElement[bool]:
    return Client.parent_id.is_not(None) if value else Client.parent_id.is_(None)


def _at_or_after(column: Any) -> Callable[[Any, FilterScope], ColumnElement[bool]]:
    return lambda value, scope: column >= value


def _before(column: Any) -> Callable[[Any, FilterScope], ColumnElement[bool]]:
    return lambda value, scope: column < value


FILTERS: dict[str, Callable[[Any, FilterScope], ColumnElement[bool]]] = {
    "manager_ids": by_manager_ids,
    "ownership": by_ownership,
    "blocked": by_blocked,
    "statuses": by_statuses,
    "countries": by_countries,
    "currencies": by_currencies,
    "login": by_login,
    "email": by_email,
    "phone": by_phone,
    "created_after": _at_or_after(Client.created_at),
    "created_before": _before(Client.created_at),
    "updated_after": _at_or_after(Client.updated_at),
    "updated_before": _before(Client.updated_at),
    "last_activity_after": _at_or_after(Client.last_activity_at),
    "last_activity_before": _before(Client.last_activity_at),
    "inactive_since": by_inactive_since,
    "never_active": by_never_active,
    "has_connections": by_has_connections,
    "ids": by_ids,
    "custom_fields": by_custom_fields,
    "parent_id": by_parent_id,
    "has_parent": by_has_parent,
    "balance_below": _before(Client.balance),
    "balance_above": _at_or_after(Client.balance),
    "valid_till_before": _before(Client.valid_till),
    "valid_till_after": _at_or_after(Client.valid_till),
}
AMOUNTS = ("balance_below", "balance_above")
RANGES = (
    ("created_after", "created_before"),
    ("updated_after", "updated_before"),
    ("last_activity_after", "last_activity_before"),
    ("balance_above", "balance_below"),
    ("valid_till_after", "valid_till_before"),
)


def by_search(value: str) -> ColumnElement[bool]:
    """Login, name or e-mail contains the text, in any case (db/search.py), or the phone its
    digits, if 3 or more."""
    text = _text(value, "search")
    if not text:
        return true()
    conditions: list[ColumnElement[bool]] = [SearchMatch(text)]
    digits = phone_digits(text)
    if len(digits) >= 3:
        conditions.append(Client.phone.like(like_pattern(digits), escape="\\"))
    return or_(*conditions)


def client_conditions(
    filter: ClientFilter | None, search: str | None, scope: FilterScope
) -> list[ColumnElement[bool]]:
    """The WHERE conditions for a filter and a search; refuses values that cannot match,
    all of them in one error."""
    conditions, problems = _conditions(filter, search, scope)
    if problems:
        raise problems_error(problems)
    return conditions


def filter_problems(arguments: dict[str, Any]) -> list[Problem]:
    """Every value of a `filter` and `search` argument that cannot match (values the scalars
    could not read aside: gql/arguments.py reports those)."""
    neutral = FilterScope(viewer_id=0, now=datetime.now(UTC))
    return _conditions(arguments.get("filter"), arguments.get("search"), neutral)[1]


def _conditions(
    filter: ClientFilter | None, search: str | None, scope: FilterScope
) -> tuple[list[ColumnElement[bool]], list[Problem]]:
    conditions: list[ColumnElement[bool]] = []
    checks = Checks()
    if filter is not None:
        unusable: set[str] = set()  # checked before they are compared: NaN cannot be
        for name in AMOUNTS:
            amount = getattr(filter, name)
            if amount is not None and _readable(amount):
                if checks.run(check_stored_amount, amount, field=["filter", _camel(name)]) is None:
                    unusable.add(name)
        for lower, upper in RANGES:
            low, high = getattr(filter, lower), getattr(filter, upper)
            if unusable & {lower, upper}:
                continue
            if _readable(low) and _readable(high) and low is not None and high is not None:
                if low >= high:
                    checks.add(
                        ErrorCode.OUT_OF_RANGE,
                        f"`filter.{_camel(lower)}` must be below `filter.{_camel(upper)}`.",
                        ["filter", _camel(lower)],
                    )
        for name, to_condition in FILTERS.items():
            value = getattr(filter, name)
            # an empty multi-select means "any"
            if value is not None and value != [] and _readable(value) and name not in unusable:
                condition = checks.run(to_condition, value, scope)
                if condition is not None:
                    conditions.append(condition)
        # an empty multi-select means "any": `connectionTypes: []` alone selects everyone
        if filter.connection_types or filter.connection_status is not None:
            types, status, match = (
                filter.connection_types or None,
                filter.connection_status,
                filter.connection_match,
            )
            if _readable(types) and _readable(status) and _readable(match):
                conditions.append(by_connections(types, status, match))
    if search is not None:
        condition = checks.run(by_search, search)
        if condition is not None:
            conditions.append(condition)
    problems = [
        Problem([_camel(step) for step in error.field or ["filter"]], error.code, error.message)
        for error in checks.errors
    ]
    return conditions, problems


def _readable(value: Any) -> bool:
    if isinstance(value, list):
        return not any(isinstance(item, Unreadable) for item in value)
    return not isinstance(value, Unreadable)


# The filter fields the tallies can answer, by the dimension they count: a condition on a
# tally's value column (ClientTally.value, or ClientPairTally.by_value) with the same meaning
# as the field's condition on clients.
TallyCondition = Callable[[Any, FilterScope, Any], ColumnElement[bool]]
TALLIED: dict[str, tuple[TallyDimension, TallyCondition]] = {
    "manager_ids": (
        TallyDimension.MANAGER,
        lambda values, scope, tally: tally.in_(
            [str(pk) for pk in (pk_of(value, "StaffUser") for value in values) if pk is not None]
        ),
    ),
    "ownership": (
        TallyDimension.MANAGER,
        lambda values, scope, tally: or_(
            *(
                {
                    ClientOwnership.OWN: tally == str(scope.viewer_id),
                    ClientOwnership.OTHERS: and_(tally != "", tally != str(scope.viewer_id)),
                    ClientOwnership.UNASSIGNED: tally == "",
                }[value]
                for value in set(values)
            )
        ),
    ),
    "countries": (
        TallyDimension.COUNTRY,
        lambda values, scope, tally: tally.in_(
            [normalize_country(value, field=["filter", "countries"]) for value in values]
        ),
    ),
    "currencies": (
        TallyDimension.CURRENCY,
        lambda values, scope, tally: tally.in_(
            [normalize_currency(value, field=["filter", "currencies"]) for value in values]
        ),
    ),
    "has_parent": (
        TallyDimension.SUB_ACCOUNT,
        lambda value, scope, tally: tally == ("1" if value else "0"),
    ),
    # one type only: a client with two types counts in both types' tallies
    "connection_types": (
        TallyDimension.CONNECTION,
        lambda values, scope, tally: tally == ConnectionType(values[0]).value,
    ),
}


def tallied_fields(filter: ClientFilter | None, search: str | None) -> dict[str, Any] | None:
    """The filter's given fields, if the tallies can count what they select (no search, only
    status and fields of TALLIED, no sub-accounts of the viewer's clients); else None."""
    if search is not None and search.strip():
        return None
    given: dict[str, Any] = {}
    if filter is not None:
        given = {
            name: value
            for name in FILTERS
            if (value := getattr(filter, name)) is not None and value != []
        }
        types = filter.connection_types
        if filter.connection_status is not None or (types is not None and len(types) > 1):
            return None
        if types:
            given["connection_types"] = types
    if ClientOwnership.OWN_AND_SUB_ACCOUNTS in given.get("ownership", []):
        return None  # sub-accounts of the viewer's clients are no tally's
    if any(name not in TALLIED and name != "statuses" for name in given):
        return None
    return given


def uses_scope(filter: ClientFilter | None) -> bool:
    """Whether the filter's conditions depend on who asks (ownership) or when (blocked)."""
    return filter is not None and (bool(filter.ownership) or filter.blocked is not None)


def tally_conditions(
    filter: ClientFilter | None, search: str | None, scope: FilterScope
) -> list[ColumnElement[bool]] | None:
    """Conditions on `client_tallies` whose rows add up to the number of clients that
    `client_conditions` selects, or None when the tallies cannot tell: a search, or a filter
    on anything but status and one of manager, country, currency and sub-accounts."""
    given = tallied_fields(filter, search)
    if given is None:
        return None
    statuses = given.pop("statuses", None)
    dimensions = {TALLIED[name][0] for name in given}
    if len(dimensions) > 1:
        return None
    dimension = dimensions.pop() if dimensions else TallyDimension.ALL
    conditions = [ClientTally.dimension == dimension]
    if statuses is not None:
        conditions.append(ClientTally.status.in_(statuses))
    conditions += [
        TALLIED[name][1](value, scope, ClientTally.value) for name, value in given.items()
    ]
    return conditions


def count_clients(
    filter: ClientFilter | None, search: str | None, scope: FilterScope
) -> Select[int]:
    """How many clients a filter and search select: a sum of tallies where they can tell,
    else a count of the matching rows."""
    conditions = tally_conditions(filter, search, scope)
    if conditions is None:
        return (
            select(func.count())
            .select_from(Client)
            .where(*client_conditions(filter, search, scope))
        )
    return select(func.coalesce(func.sum(ClientTally.n), 0)).where(*conditions)


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)
