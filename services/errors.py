"""The one list of error codes the API can report, and the exception that carries them."""

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a request was refused; the GraphQL `UserErrorCode` enum is built from this."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    NOT_FOUND = "NOT_FOUND"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_SCOPE = "INVALID_SCOPE"
    INVALID_COUNTRY = "INVALID_COUNTRY"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_LANGUAGE = "INVALID_LANGUAGE"


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
