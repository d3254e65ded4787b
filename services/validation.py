"""Input checks, each with the library made for that kind of value; they raise DomainError.

Each takes the `field` path to report, so that a mutation can list every problem at once.
"""

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from services.errors import DomainError, ErrorCode, ValidationFailed
from services.money import tender_currencies

LOGIN_PATTERN = re.compile(r"[a-z0-9._-]{3,64}")
MAX_LOGIN = 64
MAX_EMAIL = 254  # RFC 5321's limit, and the columns'
MAX_PHONE_INPUT = 64  # as typed, spaces and brackets included; stored in E.164 (16 at most)
# What no column can hold: NUL (PostgreSQL refuses it in text and JSON) and lone surrogates
# (half a UTF-16 pair: not Unicode text, no database encodes them).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
T = TypeVar("T")


def quoted(value: str, limit: int = 40) -> str:
    """A value the caller sent, for a message: quoted, and cut short when long."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def column_length(*columns: Any) -> int:
    """The most characters every one of these String(n) columns holds: the maximum of a
    text input that lands in all of them (a comment that is also an audit reason, say)."""
    return min(int(column.type.length) for column in columns)


def too_long(value: str, maximum: int, *, field: list[str]) -> None:
    """TOO_LONG if `value` has more than `maximum` characters."""
    if len(value) > maximum:
        raise DomainError(ErrorCode.TOO_LONG, f"At most {maximum} characters", field)


def storable(value: str, *, field: list[str]) -> str:
    """`value`, if a database can store it: INVALID for NUL or a lone surrogate."""
    if UNSTORABLE.search(value):
        raise DomainError(
            ErrorCode.INVALID, "Contains a character that cannot be stored (NUL, say)", field
        )
    return value


def normalize_login(value: str, *, field: list[str]) -> str:
    """A login as stored: lower case, 3-64 of a-z, 0-9, '.', '_' and '-' (as given: the Kelvin
    sign lower-cases to "k", and is not one)."""
    login = value.strip()
    too_long(login, MAX_LOGIN, field=field)
    login = login.lower() if login.isascii() else ""
    if not LOGIN_PATTERN.fullmatch(login):
        raise DomainError(
            ErrorCode.INVALID_LOGIN,
            "A login is 3 to 64 characters: letters a-z, digits, '.', '_' or '-'",
            field,
        )
    return login


def normalize_email(value: str, *, field: list[str]) -> str:
    """A syntactically valid address, normalized (domain lower-cased); no DNS look-up."""
    too_long(value.strip(), MAX_EMAIL, field=field)
    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as error:
        raise DomainError(
            ErrorCode.INVALID_EMAIL, f"Not a valid e-mail address: {error}", field
        ) from None


def normalize_phone(value: str, *, country: str | None, field: list[str]) -> str:
    """A valid phone number in E.164; a national number is read in `country`."""
    too_long(value.strip(), MAX_PHONE_INPUT, field=field)
    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        hint = "" if country else " (start with + and the country code, or give a country)"
        raise DomainError(
            ErrorCode.INVALID_PHONE, f"{value!r} is not a phone number{hint}", field
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise DomainError(ErrorCode.INVALID_PHONE, f"{value!r} is not a valid phone number", field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_country(value: str, *, field: list[str]) -> str:
    """An ISO 3166-1 alpha-2 code, upper case ("de" becomes "DE")."""
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise DomainError(
            ErrorCode.INVALID_COUNTRY, f"{value!r} is not an ISO 3166-1 country code", field
        )
    return code


def normalize_currency(value: str, *, field: list[str]) -> str:
    """An ISO 4217 code of a currency in use, upper case ("eur" becomes "EUR")."""
    code = value.strip().upper()
    if code not in tender_currencies():
        raise DomainError(
            ErrorCode.INVALID_CURRENCY, f"{value!r} is not an ISO 4217 currency in use", field
        )
    return code


def text(
    value: str | None, *, field: list[str], maximum: int, required: bool = False
) -> str | None:
    """Trimmed text, None when empty; too long, unstorable (NUL) or missing-but-required is
    an error."""
    cleaned = value.strip() if value is not None else None
    if not cleaned:
        if required:
            raise DomainError(ErrorCode.REQUIRED, "This is required", field)
        return None
    too_long(cleaned, maximum, field=field)
    return storable(cleaned, field=field)


def url(value: str | None, *, field: list[str]) -> str | None:
    """An absolute http(s) URL, or None."""
    cleaned = text(value, field=field, maximum=2048)
    if cleaned is not None and not re.fullmatch(r"https?://[^\s/$.?#][^\s]*", cleaned):
        raise DomainError(ErrorCode.INVALID, "Not an http(s) URL", field)
    return cleaned


def aware(value: datetime | None) -> datetime | None:
    """A datetime with a time zone (the API's scalar already assumes UTC for naive ones)."""
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime")
    return value


class Checks:
    """Collects the errors of many checks, so that all of them are reported together."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def run(self, check: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return check(*args, **kwargs)
        except DomainError as error:
            self.errors.append(error)
        except ValidationFailed as failed:
            self.errors.extend(failed.errors)
        return None

    async def run_async(
        self, check: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T | None:
        try:
            return await check(*args, **kwargs)
        except DomainError as error:
            self.errors.append(error)
        except ValidationFailed as failed:
            self.errors.extend(failed.errors)
        return None

    def add(self, code: ErrorCode, message: str, field: Sequence[str] | None) -> None:
        self.errors.append(DomainError(code, message, field))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)
