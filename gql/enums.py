"""The domain's enums as GraphQL shows them, registered once, before any type uses them."""

import strawberry

from db.enums import (
    ClientStatus,
    ConnectionStatus,
    ConnectionType,
    CustomFieldType,
    EntryKind,
    PaymentMethod,
    Scope,
    StaffRole,
)
from services.errors import ErrorCode

strawberry.enum(
    StaffRole,
    description="ADMIN sees and manages every client; MANAGER sees every client and changes "
    "only the clients assigned to them and their sub-accounts.",
)
strawberry.enum(Scope, description="What a token may do (on the command line: clients:read, …).")
strawberry.enum(
    ClientStatus,
    description="ACTIVE: access enabled, the client can log in. INACTIVE: access disabled.",
)
strawberry.enum(ConnectionType, description="How a client connects: SMPP, HTTP API, SMTP, web.")
strawberry.enum(ConnectionStatus, description="Whether a connection is up.")
strawberry.enum(
    CustomFieldType,
    description="TEXT (up to 1,000 characters), NUMBER (a JSON number from -10^15 to 10^15), "
    "BOOLEAN, DATE (a real date, YYYY-MM-DD), or SELECT (one of `options`).",
)
strawberry.enum(
    EntryKind,
    name="CreditEntryKind",
    description="PAYMENT adds money; DEDUCTION takes it; CREDIT_NOTE is the total of a note's "
    "lines (either sign); REVERSAL undoes an incorrect entry.",
)
strawberry.enum(PaymentMethod, description="How a payment was made.")
# The GraphQL error enum is the domain's, under its API name.
UserErrorCode = ErrorCode
strawberry.enum(
    UserErrorCode, name="UserErrorCode", description="Why a mutation's input was refused."
)

__all__ = [
    "ClientStatus",
    "ConnectionStatus",
    "ConnectionType",
    "CustomFieldType",
    "EntryKind",
    "PaymentMethod",
    "Scope",
    "StaffRole",
    "UserErrorCode",
]
