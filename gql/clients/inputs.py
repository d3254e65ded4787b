"""Inputs of the client mutations, and how they become the services' plain values."""

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON

from db.enums import Scope
from gql.arguments import kept_when_left_out
from gql.enums import ClientStatus
from gql.node import pk_of
from services.passwords import MAX_LENGTH, MIN_LENGTH, SCORED_LENGTH

# Input fields of clientCreate and clientUpdate that change what another operation owns: each
# needs the scope of that operation (gql.permissions.FieldScopes; README "Who may do what").
CLIENT_FIELD_SCOPES: tuple[tuple[str, Scope], ...] = (
    ("status", Scope.CLIENTS_WRITE),  # clientsSetStatus
    ("parent_id", Scope.CLIENTS_WRITE),  # clientLink
    ("credit_limit", Scope.CREDITS_WRITE),  # how far creditDeduct may go
    ("valid_till", Scope.CREDITS_WRITE),  # paid access, as creditAdd sets it
    ("price_adjustment_percent", Scope.PRICING_WRITE),  # clientPriceAdjustmentSet
    ("manager_id", Scope.STAFF_ADMIN),  # assigning clients to staff is staff administration
)

# A global ID of another type refers to nothing: the services report it as not found.
NO_ROW = 0


def _pk(value: strawberry.ID | None, type_name: str) -> int | None:
    if value is None:
        return None
    pk = pk_of(value, type_name)
    return NO_ROW if pk is None else pk


def _pks(values: list[strawberry.ID] | None, type_name: str) -> list[int] | None:
    return None if values is None else [_pk(v, type_name) or NO_ROW for v in values]


def _doc(description: str, default: Any = None) -> Any:
    return strawberry.field(default=default, description=description)


@strawberry.input(description="A custom field's value for one client.")
class CustomFieldValueInput:
    key: str = strawberry.field(description="The field's key (see `customFieldDefinitions`).")
    value: JSON | None = strawberry.field(
        description="A string, number, boolean, YYYY-MM-DD date or option, by the field's "
        "type; null removes the client's value."
    )


def _custom(values: list[CustomFieldValueInput] | None) -> dict[str, Any] | None:
    return None if values is None else {item.key: item.value for item in values}


@strawberry.input(description="A new client account.")
class ClientCreateInput:
    login: str = strawberry.field(description="3-64 of a-z, 0-9, '.', '_', '-'; any case given.")
    password: str = strawberry.field(
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters, hard to guess (the first "
        f"{SCORED_LENGTH} are scored; see `passwordStrength`)."
    )
    currency: str = strawberry.field(description="ISO 4217 code; fixed once money moves.")
    email: str | None = _doc("Contact e-mail (an e-mail or a phone is required).")
    phone: str | None = _doc(
        "Contact phone (at most 64 characters as typed); national numbers are read in "
        "`country`; stored in E.164."
    )
    name: str | None = _doc("Display name.")
    country: str | None = _doc("ISO 3166-1 alpha-2 code.")
    language: str | None = _doc(
        'BCP 47 tag that CLDR knows, e.g. "de" or "pt-BR": a language, then optionally a '
        "script, a region and a variant (at most 35 characters); stored as given, in canonical "
        "case."
    )
    status: ClientStatus | None = _doc("ACTIVE (default) or INACTIVE.")
    manager_id: strawberry.ID | None = _doc(
        "The account manager (a manager's own clients default to them). Needs `staff:admin`."
    )
    parent_id: strawberry.ID | None = _doc("Make it a sub-account of this client.")
    credit_limit: Decimal | None = _doc(
        "How far the balance may go below zero (default 0). Needs `credits:write`."
    )
    moderation: bool | None = _doc("Moderate the client's traffic.")
    valid_till: datetime | None = _doc(
        "Billing mode: when paid access ends. Needs `credits:write`."
    )
    department_ids: list[strawberry.ID] | None = _doc("Departments it may reach (none = all).")
    category_ids: list[strawberry.ID] | None = _doc("Categories it may use (none = all).")
    custom_fields: list[CustomFieldValueInput] | None = _doc("Custom field values.")
    price_adjustment_percent: Decimal | None = _doc(
        "Increase (+) or decrease (-) of every package price, percent, two decimals. "
        "Needs `pricing:write`."
    )
    send_login_details: bool = _doc(
        "E-mail the client their login and a one-time link to set a password.", False
    )

    def values(self) -> dict[str, Any]:
        given = {
            "login": self.login,
            "password": self.password,
            "currency": self.currency,
            "email": self.email,
            "phone": self.phone,
            "name": self.name,
            "country": self.country,
            "language": self.language,
            "status": self.status,
            "manager_id": _pk(self.manager_id, "StaffUser"),
            "parent_id": _pk(self.parent_id, "Client"),
            "credit_limit": self.credit_limit,
            "moderation": self.moderation,
            "valid_till": self.valid_till,
            "department_ids": _pks(self.department_ids, "Department"),
            "category_ids": _pks(self.category_ids, "Category"),
            "custom_fields": _custom(self.custom_fields),
            "price_adjustment_percent": self.price_adjustment_percent,
            "send_login_details": self.send_login_details,
        }
        return {name: value for name, value in given.items() if value is not None}


@strawberry.input(
    description="Changes to a client: fields left out stay as they are; null clears an "
    "optional field."
)
class ClientUpdateInput:
    login: strawberry.Maybe[str | None] = kept_when_left_out("New login.")
    name: strawberry.Maybe[str | None] = _doc("Display name.")
    email: strawberry.Maybe[str | None] = _doc("Contact e-mail.")
    phone: strawberry.Maybe[str | None] = _doc("Contact phone (at most 64 characters).")
    country: strawberry.Maybe[str | None] = _doc("ISO 3166-1 alpha-2 code.")
    currency: strawberry.Maybe[str | None] = kept_when_left_out(
        "Only while no money has moved and it is unlinked."
    )
    language: strawberry.Maybe[str | None] = _doc("BCP 47 tag, as for `clientCreate`.")
    status: strawberry.Maybe[ClientStatus | None] = kept_when_left_out("ACTIVE or INACTIVE.")
    manager_id: strawberry.Maybe[strawberry.ID | None] = _doc(
        "The account manager. Needs `staff:admin`."
    )
    credit_limit: strawberry.Maybe[Decimal | None] = kept_when_left_out(
        "Not below what the client owes. Needs `credits:write`."
    )
    moderation: strawberry.Maybe[bool | None] = kept_when_left_out("Moderate the client's traffic.")
    valid_till: strawberry.Maybe[datetime | None] = _doc(
        "Billing mode: when access ends. Needs `credits:write`."
    )
    department_ids: strawberry.Maybe[list[strawberry.ID] | None] = _doc(
        "Replaces the departments; [] or null means all."
    )
    category_ids: strawberry.Maybe[list[strawberry.ID] | None] = _doc(
        "Replaces the categories; [] or null means all."
    )
    custom_fields: strawberry.Maybe[list[CustomFieldValueInput] | None] = kept_when_left_out(
        "Values to set (others stay; a null value removes one)."
    )
    price_adjustment_percent: strawberry.Maybe[Decimal | None] = kept_when_left_out(
        "Increase (+) or decrease (-) of package prices, percent, two decimals. Needs "
        "`pricing:write`."
    )

    def values(self) -> dict[str, Any]:
        converters: dict[str, Any] = {
            "manager_id": lambda v: _pk(v, "StaffUser"),
            "department_ids": lambda v: _pks(v, "Department"),
            "category_ids": lambda v: _pks(v, "Category"),
            "custom_fields": _custom,
        }
        given = {}
        for name in self.__dataclass_fields__:
            maybe = getattr(self, name)
            if maybe is not None:  # a Some(...) wrapper: the field was given, maybe as null
                convert = converters.get(name, lambda v: v)
                given[name] = convert(maybe.value)
        return given


def field_scopes(input_type: type) -> tuple[tuple[str, Scope], ...]:
    """The rows of CLIENT_FIELD_SCOPES for the fields `input_type` has."""
    fields = input_type.__dataclass_fields__  # type: ignore[attr-defined]  # strawberry inputs are dataclasses
    return tuple((name, scope) for name, scope in CLIENT_FIELD_SCOPES if name in fields)
