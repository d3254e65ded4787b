"""Input checks, each with the library made for that kind of value. Raise DomainError."""

from email_validator import EmailNotValidError, validate_email

from services.errors import DomainError, ErrorCode


def normalize_email(value: str, *, field: list[str]) -> str:
    """A syntactically valid address, normalized (domain lower-cased); no DNS look-up."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise DomainError(
            ErrorCode.INVALID, f"Not a valid e-mail address: {error}", field
        ) from None
