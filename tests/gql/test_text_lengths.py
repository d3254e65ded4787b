"""Every text input of every mutation against the column it lands in.

Each row names the columns a text input is stored in (its own, and the audit log's where the
text is also the audit entry's reason); its maximum is the shortest of their String(n) lengths,
read here from db/models.py. A text kept in a JSON or TEXT column has a documented bound
instead. n characters are accepted (or refused for the documented reason given), n + 1 are
TOO_LONG on the input's own path, and change nothing, on both databases.
"""

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.enums import CustomFieldType, EntryKind
from db.models import (
    ApiToken,
    AuditEntry,
    CabinetSession,
    Client,
    CreditEntry,
    CreditNoteLine,
    CustomFieldDefinition,
    IdempotencyKey,
    Package,
    StaffUser,
)
from tests.api import GraphQLClient
from tests.conftest import FakeClock
from tests.factories import Factory

PASSWORD_OF_THE_LOGIN = "an honest passphrase for tests"
# Bounds of texts kept where no String(n) limits them (documented in the input descriptions
# or the services): typed phone numbers (stored in E.164), passwords (hashed), package
# descriptions (TEXT), custom field options and TEXT values (JSON).
PHONE_INPUT = 64
PASSWORD = 256
PACKAGE_DESCRIPTION = 2000
OPTION = 100
CUSTOM_TEXT = 1000


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def length(*columns: Any) -> int:
    """The most characters every one of the columns holds."""
    return min(int(column.type.length) for column in columns)


_unique = count(1)


def letters(n: int) -> str:
    return "x" * n


def login_of(n: int) -> str:
    return f"{next(_unique):03d}".rjust(n, "l")


def email_of(n: int) -> str:
    """A valid address of n characters (labels of at most 63)."""
    local = "a" * 64
    domain_length = n - len(local) - 1 - len(".com")
    labels = []
    while domain_length > 0:
        label = min(domain_length, 63)
        labels.append("d" * label)
        domain_length -= label + 1  # the dot before the next label
    return f"{local}@{'.'.join(labels)}.com"


def phone_of(n: int) -> str:
    """A valid number as typed, with spaces inside, n characters long."""
    return "+49" + " " * (n - 13) + "30 1234567"


def password_of(n: int) -> str:
    """A password of n characters that zxcvbn rates strong."""
    text = ""
    seed = b"clientdesk"
    while len(text) < n:
        seed = hashlib.sha256(seed).digest()
        text += base64.b64encode(seed).decode()
    return text[:n]


@dataclass(frozen=True)
class World:
    """What the mutations act on."""

    client_id: str
    package_id: str
    text_field_id: str
    select_field_id: str
    payment_id: str
    staff_email: str


@dataclass(frozen=True)
class TextInput:
    """One text input: where it goes, how long it may be, and how to send it."""

    query: str
    variables: Callable[[World, str], dict[str, Any]]
    path: list[str]
    maximum: int
    make: Callable[[int], str] = letters
    # the documented reason a value of exactly the maximum is refused, if it is: (path, code)
    at_maximum: tuple[list[str], str] | None = None
    # what one more character is, where it is not TOO_LONG on the input's path: (path, code)
    beyond_maximum: tuple[list[str], str] | None = None


def mutation(variables: str, call: str) -> str:
    return f"mutation({variables}) {{ {call} {{ userErrors {{ field code }} }} }}"


CLIENT_CREATE = mutation("$input: ClientCreateInput!", "clientCreate(input: $input)")
CLIENT_UPDATE = mutation(
    "$id: ID!, $input: ClientUpdateInput!", "clientUpdate(id: $id, input: $input)"
)
PASSWORD_CHANGE = mutation(
    "$id: ID!, $value: String!", "clientPasswordChange(id: $id, password: $value)"
)
BLOCK = mutation("$id: ID!, $value: String!", "clientBlock(id: $id, reason: $value)")
IMPERSONATE = mutation("$id: ID!, $value: String!", "clientImpersonate(id: $id, reason: $value)")
REVOKE_SESSIONS = mutation(
    "$id: ID!, $value: String!", "clientCabinetSessionsRevoke(clientId: $id, reason: $value)"
)
CREDIT_ADD = mutation("$input: CreditAddInput!", "creditAdd(input: $input)")
CREDIT_DEDUCT = mutation("$input: CreditDeductInput!", "creditDeduct(input: $input)")
CREDIT_NOTE = mutation("$input: CreditNoteCreateInput!", "creditNoteCreate(input: $input)")
REVERSE = mutation("$id: ID!, $value: String!", "creditEntryReverse(entryId: $id, reason: $value)")
PACKAGE_CREATE = mutation("$input: PackageCreateInput!", "packageCreate(input: $input)")
PACKAGE_UPDATE = mutation(
    "$id: ID!, $input: PackageUpdateInput!", "packageUpdate(id: $id, input: $input)"
)
FIELD_CREATE = mutation(
    "$input: CustomFieldDefinitionCreateInput!", "customFieldDefinitionCreate(input: $input)"
)
FIELD_UPDATE = mutation(
    "$id: ID!, $input: CustomFieldDefinitionUpdateInput!",
    "customFieldDefinitionUpdate(id: $id, input: $input)",
)
TOKEN_CREATE = mutation("$input: TokenCreateInput!", "tokenCreate(input: $input)")
STAFF_LOGIN = mutation(
    "$email: String!, $password: String!", "staffLogin(email: $email, password: $password)"
)


def new_client(**values: Any) -> dict[str, Any]:
    n = next(_unique)
    return {
        "input": {
            "login": f"new{n}",
            "password": password_of(20),
            "currency": "EUR",
            "email": f"new{n}@example.com",
            **values,
        }
    }


def client_change(w: World, **values: Any) -> dict[str, Any]:
    return {"id": w.client_id, "input": values}


def payment(w: World, **values: Any) -> dict[str, Any]:
    return {"input": {"clientId": w.client_id, "amount": "1", "paymentMethod": "CASH", **values}}


def note(w: World, comment: str | None = None, description: str = "Line") -> dict[str, Any]:
    line = {"description": description, "quantity": 1, "unitAmount": "1"}
    return {"input": {"clientId": w.client_id, "lines": [line], "comment": comment}}


def new_field(**values: Any) -> dict[str, Any]:
    return {"input": {"key": f"f{next(_unique)}", "label": "Field", "type": "TEXT", **values}}


REASON = length(AuditEntry.reason)
INPUTS: dict[str, TextInput] = {
    "clientCreate login": TextInput(
        CLIENT_CREATE,
        lambda w, v: new_client(login=v),
        ["input", "login"],
        length(Client.login),
        login_of,
    ),
    "clientCreate name": TextInput(
        CLIENT_CREATE, lambda w, v: new_client(name=v), ["input", "name"], length(Client.name)
    ),
    "clientCreate email": TextInput(
        CLIENT_CREATE,
        lambda w, v: new_client(email=v),
        ["input", "email"],
        length(Client.email),
        email_of,
    ),
    "clientCreate phone": TextInput(
        CLIENT_CREATE, lambda w, v: new_client(phone=v), ["input", "phone"], PHONE_INPUT, phone_of
    ),
    "clientCreate language": TextInput(
        CLIENT_CREATE,
        lambda w, v: new_client(language=v),
        ["input", "language"],
        length(Client.language),
        at_maximum=(["input", "language"], "INVALID_LANGUAGE"),  # no tag is that long
    ),
    "clientCreate password": TextInput(
        CLIENT_CREATE,
        lambda w, v: new_client(password=v),
        ["input", "password"],
        PASSWORD,
        password_of,
    ),
    "clientCreate customFields TEXT value": TextInput(
        CLIENT_CREATE,
        lambda w, v: new_client(customFields=[{"key": "notes", "value": v}]),
        ["input", "customFields", "0"],
        CUSTOM_TEXT,
    ),
    "clientUpdate login": TextInput(
        CLIENT_UPDATE,
        lambda w, v: client_change(w, login=v),
        ["input", "login"],
        length(Client.login),
        login_of,
    ),
    "clientUpdate name": TextInput(
        CLIENT_UPDATE, lambda w, v: client_change(w, name=v), ["input", "name"], length(Client.name)
    ),
    "clientUpdate email": TextInput(
        CLIENT_UPDATE,
        lambda w, v: client_change(w, email=v),
        ["input", "email"],
        length(Client.email),
        email_of,
    ),
    "clientUpdate phone": TextInput(
        CLIENT_UPDATE,
        lambda w, v: client_change(w, phone=v),
        ["input", "phone"],
        PHONE_INPUT,
        phone_of,
    ),
    "clientUpdate language": TextInput(
        CLIENT_UPDATE,
        lambda w, v: client_change(w, language=v),
        ["input", "language"],
        length(Client.language),
        at_maximum=(["input", "language"], "INVALID_LANGUAGE"),
    ),
    "clientUpdate customFields TEXT value": TextInput(
        CLIENT_UPDATE,
        lambda w, v: client_change(w, customFields=[{"key": "notes", "value": v}]),
        ["input", "customFields", "0"],
        CUSTOM_TEXT,
    ),
    "clientPasswordChange password": TextInput(
        PASSWORD_CHANGE,
        lambda w, v: {"id": w.client_id, "value": v},
        ["password"],
        PASSWORD,
        password_of,
    ),
    "clientBlock reason": TextInput(
        BLOCK,
        lambda w, v: {"id": w.client_id, "value": v},
        ["reason"],
        length(Client.block_reason, AuditEntry.reason),
    ),
    "clientImpersonate reason": TextInput(
        IMPERSONATE, lambda w, v: {"id": w.client_id, "value": v}, ["reason"], REASON
    ),
    "clientCabinetSessionsRevoke reason": TextInput(
        REVOKE_SESSIONS,
        lambda w, v: {"id": w.client_id, "value": v},
        ["reason"],
        length(CabinetSession.revoked_reason, AuditEntry.reason),
    ),
    "creditAdd paymentReference": TextInput(
        CREDIT_ADD,
        lambda w, v: payment(w, paymentReference=v),
        ["input", "paymentReference"],
        length(CreditEntry.payment_reference),
    ),
    "creditAdd comment": TextInput(
        CREDIT_ADD,
        lambda w, v: payment(w, comment=v),
        ["input", "comment"],
        length(CreditEntry.comment, AuditEntry.reason),
    ),
    "creditAdd idempotencyKey": TextInput(
        CREDIT_ADD,
        lambda w, v: payment(w, idempotencyKey=v),
        ["input", "idempotencyKey"],
        length(IdempotencyKey.key),
    ),
    "creditDeduct reason": TextInput(
        CREDIT_DEDUCT,
        lambda w, v: {"input": {"clientId": w.client_id, "amount": "1", "reason": v}},
        ["input", "reason"],
        length(CreditEntry.comment, AuditEntry.reason),
    ),
    "creditNoteCreate comment": TextInput(
        CREDIT_NOTE,
        lambda w, v: note(w, comment=v),
        ["input", "comment"],
        length(CreditEntry.comment, AuditEntry.reason),
    ),
    "creditNoteCreate line description": TextInput(
        CREDIT_NOTE,
        lambda w, v: note(w, description=v),
        ["input", "lines", "0", "description"],
        length(CreditNoteLine.description),
    ),
    "creditEntryReverse reason": TextInput(
        REVERSE,
        lambda w, v: {"id": w.payment_id, "value": v},
        ["reason"],
        length(CreditEntry.comment, AuditEntry.reason),
    ),
    "packageCreate name": TextInput(
        PACKAGE_CREATE,
        lambda w, v: {"input": {"name": v, "prices": []}},
        ["input", "name"],
        length(Package.name, AuditEntry.target_label),
    ),
    "packageCreate description": TextInput(
        PACKAGE_CREATE,
        lambda w, v: {"input": {"name": "New", "description": v, "prices": []}},
        ["input", "description"],
        PACKAGE_DESCRIPTION,
    ),
    "packageUpdate name": TextInput(
        PACKAGE_UPDATE,
        lambda w, v: {"id": w.package_id, "input": {"name": v}},
        ["input", "name"],
        length(Package.name, AuditEntry.target_label),
    ),
    "packageUpdate description": TextInput(
        PACKAGE_UPDATE,
        lambda w, v: {"id": w.package_id, "input": {"description": v}},
        ["input", "description"],
        PACKAGE_DESCRIPTION,
    ),
    "customFieldDefinitionCreate key": TextInput(
        FIELD_CREATE,
        lambda w, v: {"input": {"key": v, "label": "Field", "type": "TEXT"}},
        ["input", "key"],
        length(CustomFieldDefinition.key, AuditEntry.target_label),
    ),
    "customFieldDefinitionCreate label": TextInput(
        FIELD_CREATE,
        lambda w, v: new_field(label=v),
        ["input", "label"],
        length(CustomFieldDefinition.label),
    ),
    "customFieldDefinitionCreate option": TextInput(
        FIELD_CREATE,
        lambda w, v: new_field(type="SELECT", options=["a", v]),
        ["input", "options", "1"],
        OPTION,
    ),
    "customFieldDefinitionUpdate label": TextInput(
        FIELD_UPDATE,
        lambda w, v: {"id": w.text_field_id, "input": {"label": v}},
        ["input", "label"],
        length(CustomFieldDefinition.label),
    ),
    "customFieldDefinitionUpdate option": TextInput(
        FIELD_UPDATE,
        lambda w, v: {"id": w.select_field_id, "input": {"options": ["gold", v]}},
        ["input", "options", "1"],
        OPTION,
    ),
    "tokenCreate name": TextInput(
        TOKEN_CREATE,
        lambda w, v: {"input": {"name": v, "scopes": ["CLIENTS_READ"]}},
        ["input", "name"],
        length(ApiToken.name),
    ),
    "staffLogin email": TextInput(
        STAFF_LOGIN,
        lambda w, v: {"email": v, "password": PASSWORD_OF_THE_LOGIN},
        ["email"],
        length(StaffUser.email),
        email_of,
        at_maximum=(["password"], "INVALID_CREDENTIALS"),  # no staff user has that address
        # a sign-in says no more than that the credentials are wrong
        beyond_maximum=(["password"], "INVALID_CREDENTIALS"),
    ),
    "staffLogin password": TextInput(
        STAFF_LOGIN,
        lambda w, v: {"email": w.staff_email, "password": v},
        ["password"],
        PASSWORD,
        at_maximum=(["password"], "INVALID_CREDENTIALS"),  # not the password
        beyond_maximum=(["password"], "INVALID_CREDENTIALS"),
    ),
}


@pytest.fixture
async def world(
    api: GraphQLClient, factory: Factory, session: AsyncSession, clock: FakeClock
) -> World:
    api.token = await factory.admin_token()
    staff = await factory.staff(email="login@clientdesk.test", password=PASSWORD_OF_THE_LOGIN)
    client = await factory.client(balance=Decimal(10), credit_limit=Decimal(100))
    package = Package(name="Starter", created_at=clock(), updated_at=clock())
    text_field = CustomFieldDefinition(
        key="notes", label="Notes", type=CustomFieldType.TEXT, created_at=clock()
    )
    select_field = CustomFieldDefinition(
        key="tier",
        label="Tier",
        type=CustomFieldType.SELECT,
        options=["gold"],
        created_at=clock(),
    )
    paid = CreditEntry(
        client_id=client.id,
        kind=EntryKind.PAYMENT,
        amount=Decimal(10),
        currency="EUR",
        balance_after=Decimal(10),
        created_at=clock(),
    )
    session.add_all([package, text_field, select_field, paid])
    await session.commit()
    return World(
        client_id=gid("Client", client.id),
        package_id=gid("Package", package.id),
        text_field_id=gid("CustomFieldDefinition", text_field.id),
        select_field_id=gid("CustomFieldDefinition", select_field.id),
        payment_id=gid("CreditEntry", paid.id),
        staff_email=staff.email,
    )


async def audit_entries(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def user_errors(api: GraphQLClient, text_input: TextInput, variables: dict[str, Any]) -> Any:
    data = await api(text_input.query, variables)
    [payload] = data.values()
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


@pytest.mark.parametrize("name", INPUTS)
async def test_the_maximum_is_accepted(
    api: GraphQLClient, world: World, session: AsyncSession, name: str
) -> None:
    # given a text of exactly the input's maximum length
    text_input = INPUTS[name]
    value = text_input.make(text_input.maximum)
    assert len(value) == text_input.maximum
    # when it is sent
    errors = await user_errors(api, text_input, text_input.variables(world, value))
    # then it is taken, or refused for the documented reason only
    assert errors == ([] if text_input.at_maximum is None else [text_input.at_maximum])


@pytest.mark.parametrize("name", INPUTS)
async def test_one_more_character_is_too_long(
    api: GraphQLClient, world: World, session: AsyncSession, name: str
) -> None:
    # given a text one character longer than the input's maximum
    text_input = INPUTS[name]
    value = text_input.make(text_input.maximum + 1)
    assert len(value) == text_input.maximum + 1
    before = await audit_entries(session)
    # when it is sent
    errors = await user_errors(api, text_input, text_input.variables(world, value))
    # then it is TOO_LONG on its own path, and nothing was written
    assert errors == [text_input.beyond_maximum or (text_input.path, "TOO_LONG")]
    assert await audit_entries(session) == before
