"""The domain's enums as GraphQL shows them, registered once, before any type uses them."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import strawberry

from db.enums import (
    BulkJobStatus,
    ClientStatus,
    ConnectionStatus,
    ConnectionType,
    CustomFieldType,
    EntryKind,
    MailStatus,
    PaymentMethod,
    Scope,
    StaffRole,
)
from services.errors import ERROR_DESCRIPTIONS, ErrorCode


def _register(
    enum: type[StrEnum], description: str, values: Mapping[Any, str], name: str | None = None
) -> None:
    """The enum registered for GraphQL, with a description for it and each of its values
    (every value needs one: the front end reads them in GraphiQL)."""
    missing = set(enum) - set(values)
    if missing:
        raise ValueError(f"{enum.__name__}: no description for {sorted(missing)}")
    strawberry.enum(enum, name=name, description=description)
    for value in enum.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[enum(value.value)]


_register(
    StaffRole,
    "What a staff user may do.",
    {
        StaffRole.ADMIN: "Sees and manages every client, the staff, settings and reference data.",
        StaffRole.MANAGER: "Sees every client; changes only the clients assigned to them and "
        "their sub-accounts.",
    },
)
_register(
    Scope,
    "What a token may do (on the command line: clients:read, …).",
    {
        Scope.CLIENTS_READ: "Read clients, their ledgers, prices and the audit log.",
        Scope.CLIENTS_WRITE: "Create and change clients: details, status, blocks, links.",
        Scope.CLIENTS_DELETE: "Delete clients.",
        Scope.CREDITS_WRITE: "Add and deduct credit, write credit notes, reverse entries.",
        Scope.PRICING_WRITE: "Set clients' price adjustments; with the ADMIN role, packages.",
        Scope.CLIENTS_IMPERSONATE: "Open a client's cabinet as the client.",
        Scope.TOKENS_WRITE: "Create, list and revoke API tokens (never stronger than this one).",
        Scope.STAFF_ADMIN: "Staff administration: custom field definitions, assigning managers, "
        "the staff's part of the audit log, other users' tokens.",
    },
)
_register(
    ClientStatus,
    "Whether the client's access is enabled (see also blocks and `canLogin`).",
    {
        ClientStatus.ACTIVE: "Access enabled: the client can log in (unless blocked or expired).",
        ClientStatus.INACTIVE: "Access disabled: the client cannot log in.",
    },
)
_register(
    ConnectionType,
    "How a client connects.",
    {
        ConnectionType.SMPP: "An SMPP bind.",
        ConnectionType.HTTP: "The HTTP API.",
        ConnectionType.SMTP: "The SMTP relay.",
        ConnectionType.WEB: "The web cabinet.",
    },
)
_register(
    ConnectionStatus,
    "Whether a connection is up.",
    {
        ConnectionStatus.ONLINE: "Connected now.",
        ConnectionStatus.OFFLINE: "Not connected (see `lastSeenAt`).",
    },
)
_register(
    CustomFieldType,
    "What values a custom field takes.",
    {
        CustomFieldType.TEXT: "Text, up to 1,000 characters.",
        CustomFieldType.NUMBER: "A JSON number from -10^15 to 10^15.",
        CustomFieldType.BOOLEAN: "true or false.",
        CustomFieldType.DATE: "A real calendar date, written YYYY-MM-DD.",
        CustomFieldType.SELECT: "One of the definition's `options`.",
    },
)
_register(
    EntryKind,
    "What a ledger entry records.",
    {
        EntryKind.PAYMENT: "Money added (creditAdd); positive.",
        EntryKind.CREDIT_NOTE: "The total of a credit note's lines; either sign.",
        EntryKind.DEDUCTION: "Money taken (creditDeduct); negative.",
        EntryKind.REVERSAL: "Undoes an incorrect entry: its amount negated (creditEntryReverse).",
    },
    name="CreditEntryKind",
)
_register(
    PaymentMethod,
    "How a payment was made.",
    {
        PaymentMethod.BANK_TRANSFER: "A bank transfer.",
        PaymentMethod.CARD: "A card payment.",
        PaymentMethod.PAYPAL: "PayPal.",
        PaymentMethod.CASH: "Cash.",
        PaymentMethod.CHECK: "A cheque.",
        PaymentMethod.CRYPTO: "A cryptocurrency transfer.",
        PaymentMethod.OTHER: "Any other way (say which in the reference or comment).",
    },
)
_register(
    MailStatus,
    "Where an e-mail is on its way out.",
    {
        MailStatus.PENDING: "Waiting in the outbox, or retried after a failed attempt.",
        MailStatus.SENT: "Accepted by the mail server.",
        MailStatus.FAILED: "Given up after the last attempt (see `lastError`).",
    },
    name="MailDeliveryStatus",
)
_register(
    BulkJobStatus,
    "Where a bulk job is.",
    {
        BulkJobStatus.QUEUED: "Waiting for a worker.",
        BulkJobStatus.RUNNING: "Being worked through, a chunk of clients per transaction.",
        BulkJobStatus.FINISHED: "Every client was changed, left as it was, or refused.",
        BulkJobStatus.CANCELLED: "Stopped by `bulkJobCancel`: the clients done before stay done.",
        BulkJobStatus.FAILED: "Stopped by the system (`failure` says why).",
    },
)
# The GraphQL error enum is the domain's, under its API name.
UserErrorCode = ErrorCode
_register(
    UserErrorCode, "Why a mutation's input was refused.", ERROR_DESCRIPTIONS, name="UserErrorCode"
)

__all__ = [
    "BulkJobStatus",
    "ClientStatus",
    "ConnectionStatus",
    "ConnectionType",
    "CustomFieldType",
    "EntryKind",
    "MailStatus",
    "PaymentMethod",
    "Scope",
    "StaffRole",
    "UserErrorCode",
]
