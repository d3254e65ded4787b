"""The closed sets of values the tables accept (CHECK constraints are built from these)."""

from enum import StrEnum


class StaffRole(StrEnum):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"


class TokenKind(StrEnum):
    API = "API"  # created by `clientdesk token create` or `tokenCreate`, for integrations
    SESSION = "SESSION"  # issued by `staffLogin`, for people in an admin UI


class ClientStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class ConnectionType(StrEnum):
    SMPP = "SMPP"
    HTTP = "HTTP"
    SMTP = "SMTP"
    WEB = "WEB"


class ConnectionStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class EntryKind(StrEnum):
    PAYMENT = "PAYMENT"
    CREDIT_NOTE = "CREDIT_NOTE"
    DEDUCTION = "DEDUCTION"
    REVERSAL = "REVERSAL"


class PaymentMethod(StrEnum):
    BANK_TRANSFER = "BANK_TRANSFER"
    CARD = "CARD"
    PAYPAL = "PAYPAL"
    CASH = "CASH"
    CHECK = "CHECK"
    CRYPTO = "CRYPTO"
    OTHER = "OTHER"


class CustomFieldType(StrEnum):
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"
    SELECT = "SELECT"


class MailStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class BulkJobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class BulkItemState(StrEnum):
    PENDING = "PENDING"
    CHANGED = "CHANGED"
    UNCHANGED = "UNCHANGED"
    REFUSED = "REFUSED"


class Scope(StrEnum):
    CLIENTS_READ = "clients:read"
    CLIENTS_WRITE = "clients:write"
    CLIENTS_DELETE = "clients:delete"
    CREDITS_WRITE = "credits:write"
    PRICING_WRITE = "pricing:write"
    CLIENTS_IMPERSONATE = "clients:impersonate"
    TOKENS_WRITE = "tokens:write"  # create API tokens, list them, revoke the owner's others
    STAFF_ADMIN = "staff:admin"


class TallyDimension(StrEnum):
    """What the client tallies count by, besides status (see db.models.ClientTally)."""

    ALL = "all"  # value "": every client
    MANAGER = "manager"  # value: the manager's id, "" for none
    COUNTRY = "country"  # value: the country code, "" for none
    CURRENCY = "currency"  # value: the currency code
    SUB_ACCOUNT = "sub_account"  # value: "1" for sub-accounts, "0" for top-level clients
    CONNECTION = "connection"  # value: a connection type; a client counts once per type it has
