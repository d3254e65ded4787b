"""Input checks, each with the library made for that kind of value. Raise DomainError."""

import pycountry
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


def normalize_country(value: str, *, field: list[str]) -> str:
    """An ISO 3166-1 alpha-2 code, upper case ("de" becomes "DE")."""
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise DomainError(
            ErrorCode.INVALID_COUNTRY, f"{value!r} is not an ISO 3166-1 country code", field
        )
    return code


def normalize_currency(value: str, *, field: list[str]) -> str:
    """An ISO 4217 currency code, upper case ("eur" becomes "EUR")."""
    code = value.strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise DomainError(
            ErrorCode.INVALID_CURRENCY, f"{value!r} is not an ISO 4217 currency code", field
        )
    return code
