"""The one list of error codes the API can report, and the exception that carries them."""

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a request was refused; the GraphQL `UserErrorCode` enum is built from this."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    NOT_FOUND = "NOT_FOUND"
    NOT_ALLOWED = "NOT_ALLOWED"
    TOO_MANY = "TOO_MANY"
    DUPLICATE = "DUPLICATE"
    CONFIRMATION_REQUIRED = "CONFIRMATION_REQUIRED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    INVALID_SCOPE = "INVALID_SCOPE"
    INVALID_LOGIN = "INVALID_LOGIN"
    LOGIN_TAKEN = "LOGIN_TAKEN"
    CONTACT_REQUIRED = "CONTACT_REQUIRED"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_COUNTRY = "INVALID_COUNTRY"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_LANGUAGE = "INVALID_LANGUAGE"
    PASSWORD_TOO_SHORT = "PASSWORD_TOO_SHORT"
    PASSWORD_TOO_WEAK = "PASSWORD_TOO_WEAK"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_AMOUNT_PRECISION = "INVALID_AMOUNT_PRECISION"
    AMOUNT_TOO_LARGE = "AMOUNT_TOO_LARGE"
    AMOUNT_NOT_POSITIVE = "AMOUNT_NOT_POSITIVE"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    INVALID_ID = "INVALID_ID"
    INVALID_DATE = "INVALID_DATE"
    INVALID_CHOICE = "INVALID_CHOICE"
    NULL_NOT_ALLOWED = "NULL_NOT_ALLOWED"
    CURRENCY_LOCKED = "CURRENCY_LOCKED"
    CREDIT_LIMIT_BELOW_DEBT = "CREDIT_LIMIT_BELOW_DEBT"
    PARENT_INVALID = "PARENT_INVALID"
    CUSTOM_FIELD_UNKNOWN = "CUSTOM_FIELD_UNKNOWN"
    CUSTOM_FIELD_INVALID = "CUSTOM_FIELD_INVALID"
    CUSTOM_FIELD_REQUIRED = "CUSTOM_FIELD_REQUIRED"
    CUSTOM_FIELD_IN_USE = "CUSTOM_FIELD_IN_USE"
    HAS_BALANCE = "HAS_BALANCE"
    HAS_SUB_ACCOUNTS = "HAS_SUB_ACCOUNTS"
    CREDIT_LIMIT_EXCEEDED = "CREDIT_LIMIT_EXCEEDED"
    ALREADY_REVERSED = "ALREADY_REVERSED"
    NOT_REVERSIBLE = "NOT_REVERSIBLE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    NOT_BLOCKED = "NOT_BLOCKED"
    SELF_LINK = "SELF_LINK"
    CYCLE = "CYCLE"
    ALREADY_LINKED = "ALREADY_LINKED"
    NOT_LINKED = "NOT_LINKED"
    PARENT_IS_SUB_ACCOUNT = "PARENT_IS_SUB_ACCOUNT"
    CHILD_HAS_SUB_ACCOUNTS = "CHILD_HAS_SUB_ACCOUNTS"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    CLIENT_CANNOT_LOGIN = "CLIENT_CANNOT_LOGIN"
    INVALID_TOKEN = "INVALID_TOKEN"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    SESSION_ENDED = "SESSION_ENDED"
    CONFLICT = "CONFLICT"


class DomainError(Exception):
    """A rule said no: `code` for programs, `message` for people, `field` the input path."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field else None


class ValidationFailed(Exception):
    """Several DomainErrors found at once; nothing was written."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.errors = list(errors)


class Denial(StrEnum):
    """Why an actor may not do something: `extensions.reason` of a FORBIDDEN error."""

    NOT_YOUR_CLIENT = "NOT_YOUR_CLIENT"  # managers change only their clients and sub-accounts
    MISSING_SCOPE = "MISSING_SCOPE"  # the token was not granted the scope this needs
    ADMINS_ONLY = "ADMINS_ONLY"  # only staff with the ADMIN role may


class PermissionDenied(Exception):
    """The actor may not do this at all (reported as a top-level FORBIDDEN error): why, and
    the inputs it is about (paths into the mutation's arguments, e.g. ["ids", "2"])."""

    def __init__(self, message: str, reason: Denial, fields: Sequence[Sequence[str]] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.fields = [list(field) for field in fields]
