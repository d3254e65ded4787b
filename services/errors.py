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
    BILLING_MODE_OFF = "BILLING_MODE_OFF"
    SELECTION_CHANGED = "SELECTION_CHANGED"
    ALREADY_FINISHED = "ALREADY_FINISHED"
    STALE_VERSION = "STALE_VERSION"


# What each code means, for the people who read the API's documentation.
ERROR_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.INVALID: (
        "The value breaks a rule that has no more specific code; the message names the rule."
    ),
    ErrorCode.REQUIRED: (
        "A required value is missing or blank, or a list that needs at least one item is empty."
    ),
    ErrorCode.TOO_LONG: "The text has more characters than this field allows.",
    ErrorCode.NOT_FOUND: (
        "A referenced record (client, staff user, token, package, entry, ...) does not exist."
    ),
    ErrorCode.NOT_ALLOWED: (
        "You may not do this in this case, e.g. only an admin may, or it is not your client."
    ),
    ErrorCode.TOO_MANY: (
        "The list has more items than allowed, e.g. too many clients at once or too many options."
    ),
    ErrorCode.DUPLICATE: (
        "The value is taken: a custom field key, a package name, or a currency priced twice."
    ),
    ErrorCode.CONFIRMATION_REQUIRED: (
        "This takes effect at once (deleting: restorable until purged): repeat the request "
        "with `confirm: true`."
    ),
    ErrorCode.INVALID_CREDENTIALS: (
        "The e-mail address or password is wrong, or the account is inactive."
    ),
    ErrorCode.TOO_MANY_ATTEMPTS: (
        "Too many attempts (to sign in, or login e-mails to one client); wait the number of "
        "seconds given in the message."
    ),
    ErrorCode.INVALID_SCOPE: (
        "A scope is unknown, not held by your token, or not allowed for the staff user's role."
    ),
    ErrorCode.INVALID_LOGIN: "A login is 3 to 64 characters: letters a-z, digits, '.', '_' or '-'.",
    ErrorCode.LOGIN_TAKEN: "Another client already has this login.",
    ErrorCode.CONTACT_REQUIRED: (
        "The client needs an e-mail address or phone number; sending login details needs an e-mail."
    ),
    ErrorCode.INVALID_EMAIL: "The e-mail address is not valid (checked with email-validator).",
    ErrorCode.INVALID_PHONE: "The phone number is not valid; a national number needs a country.",
    ErrorCode.INVALID_COUNTRY: "The value is not an ISO 3166-1 alpha-2 country code.",
    ErrorCode.INVALID_CURRENCY: "The value is not an ISO 4217 currency code in use.",
    ErrorCode.INVALID_LANGUAGE: "The value is not a known language tag.",
    ErrorCode.PASSWORD_TOO_SHORT: "The password has fewer characters than the minimum length.",
    ErrorCode.PASSWORD_TOO_WEAK: (
        "The password is too easy to guess (zxcvbn strength below the required score)."
    ),
    ErrorCode.INVALID_AMOUNT: (
        "The amount is not a plain decimal string, or is negative where it must be zero or more."
    ),
    ErrorCode.INVALID_AMOUNT_PRECISION: (
        "The amount has more decimal places than allowed (the currency's minor units)."
    ),
    ErrorCode.AMOUNT_TOO_LARGE: (
        "The amount, a credit note total, or the resulting balance exceeds the allowed maximum."
    ),
    ErrorCode.AMOUNT_NOT_POSITIVE: "The amount must be more than zero.",
    ErrorCode.OUT_OF_RANGE: (
        "A value is outside its allowed range, or a filter's lower bound is not below its upper."
    ),
    ErrorCode.INVALID_ID: "The value is not a valid global ID.",
    ErrorCode.INVALID_DATE: (
        "The value is not an ISO 8601 date and time between the years 1900 and 9999."
    ),
    ErrorCode.INVALID_CHOICE: "The value is not one of the enum's values.",
    ErrorCode.NULL_NOT_ALLOWED: "This input field may be left out but not set to null.",
    ErrorCode.CURRENCY_LOCKED: (
        "The client's currency cannot change once it has ledger entries or linked accounts."
    ),
    ErrorCode.CREDIT_LIMIT_BELOW_DEBT: (
        "The credit limit cannot be lower than what the client currently owes."
    ),
    ErrorCode.PARENT_INVALID: (
        "The chosen parent is itself a sub-account or uses a different currency."
    ),
    ErrorCode.CUSTOM_FIELD_UNKNOWN: "No custom field has this key.",
    ErrorCode.CUSTOM_FIELD_INVALID: (
        "The value does not fit the custom field's type or is not one of its options."
    ),
    ErrorCode.CUSTOM_FIELD_REQUIRED: "A required custom field is missing, empty, or being removed.",
    ErrorCode.CUSTOM_FIELD_IN_USE: "A SELECT option cannot be removed while clients still hold it.",
    ErrorCode.HAS_BALANCE: "The client cannot be deleted while its balance is not zero.",
    ErrorCode.HAS_SUB_ACCOUNTS: (
        "The client cannot be deleted while it has sub-accounts that are not deleted with it."
    ),
    ErrorCode.CREDIT_LIMIT_EXCEEDED: "A debit would take the balance below minus the credit limit.",
    ErrorCode.ALREADY_REVERSED: "This ledger entry has already been reversed.",
    ErrorCode.NOT_REVERSIBLE: (
        "The entry cannot be reversed: it is itself a reversal or has a zero amount."
    ),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: (
        "This idempotency key was already used for a different request."
    ),
    ErrorCode.NOT_BLOCKED: "The client is not blocked, so there is nothing to unblock.",
    ErrorCode.SELF_LINK: "A client cannot be its own sub-account.",
    ErrorCode.CYCLE: "The link would make a loop: the child is above the parent.",
    ErrorCode.ALREADY_LINKED: "The client is already a sub-account; unlink it first.",
    ErrorCode.NOT_LINKED: "The client is not a sub-account, so there is nothing to unlink.",
    ErrorCode.PARENT_IS_SUB_ACCOUNT: (
        "The parent is itself a sub-account; links are one level deep."
    ),
    ErrorCode.CHILD_HAS_SUB_ACCOUNTS: (
        "The child has sub-accounts of its own; links are one level deep."
    ),
    ErrorCode.CURRENCY_MISMATCH: "The parent and the child use different currencies.",
    ErrorCode.CLIENT_CANNOT_LOGIN: (
        "The client is blocked or inactive; its cabinet opens only if an admin passes `force`."
    ),
    ErrorCode.INVALID_TOKEN: (
        "The cabinet token is malformed, tampered with, foreign, or does not match its session."
    ),
    ErrorCode.TOKEN_EXPIRED: "The cabinet token has expired.",
    ErrorCode.SESSION_ENDED: (
        "The cabinet session has ended: revoked, expired, or its client or issuer lost access."
    ),
    ErrorCode.BILLING_MODE_OFF: (
        "Billing Mode is off (`systemSettings`): balances and credits are not used, so money "
        "is not moved."
    ),
    ErrorCode.SELECTION_CHANGED: (
        "The clients a bulk action selects are not those its preview showed (its "
        "`fingerprint`): preview again and confirm what it shows."
    ),
    ErrorCode.ALREADY_FINISHED: (
        "The job has finished already (done, cancelled or failed): there is nothing to stop."
    ),
    ErrorCode.STALE_VERSION: (
        "The client changed since the version given in `expectedVersion` (someone else "
        "changed it first): nothing was changed; the payload's `client` is as it is now, with "
        "its current `version` — show it, and apply the change again if it still holds."
    ),
    ErrorCode.CONFLICT: (
        "Concurrent changes to the same records kept clashing; try the request again."
    ),
}


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
