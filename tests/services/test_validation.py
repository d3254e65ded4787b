"""The input checks, each with its library: what they accept, normalize and refuse."""

from decimal import Decimal

import pytest

from db.models import AuditEntry, CreditEntry
from services.errors import DomainError, ErrorCode
from services.languages import normalize_language
from services.money import WrittenDecimal, check_amount, check_stored_amount
from services.passwords import check_password, strength
from services.validation import (
    column_length,
    normalize_country,
    normalize_currency,
    normalize_email,
    normalize_login,
    normalize_phone,
    text,
)

FIELD = ["x"]


def refused(check: object, *args: object, **kwargs: object) -> ErrorCode:
    with pytest.raises(DomainError) as caught:
        check(*args, field=FIELD, **kwargs)  # type: ignore[operator]
    assert caught.value.field == FIELD
    return caught.value.code


@pytest.mark.parametrize(("given", "stored"), [("Acme", "acme"), (" a.b_c-1 ", "a.b_c-1")])
def test_login_is_stored_lower_case(given: str, stored: str) -> None:
    assert normalize_login(given, field=FIELD) == stored


@pytest.mark.parametrize("login", ["ab", "bad login", "émile", "semi;colon", ""])
def test_bad_logins(login: str) -> None:
    assert refused(normalize_login, login) is ErrorCode.INVALID_LOGIN


def test_a_login_longer_than_its_column_is_too_long() -> None:
    assert normalize_login("x" * 64, field=FIELD) == "x" * 64
    assert refused(normalize_login, "x" * 65) is ErrorCode.TOO_LONG


def test_email_is_normalized_and_checked() -> None:
    assert normalize_email(" Ada@Example.COM ", field=FIELD) == "Ada@example.com"
    for bad in ("no-at-sign", "a@b", "a@@b.com", "a b@c.com"):
        assert refused(normalize_email, bad) is ErrorCode.INVALID_EMAIL


@pytest.mark.parametrize(
    ("phone", "country", "e164"),
    [
        ("030 1234567", "DE", "+49301234567"),  # national format, read in the client's country
        ("+49 (0)30 1234567", None, "+49301234567"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("+81 3-1234-5678", "GB", "+81312345678"),  # an international number ignores the country
    ],
)
def test_phone_becomes_e164(phone: str, country: str | None, e164: str) -> None:
    assert normalize_phone(phone, country=country, field=FIELD) == e164


@pytest.mark.parametrize(
    ("phone", "country"), [("030 1234567", None), ("123", "DE"), ("hello", "DE")]
)
def test_bad_phones(phone: str, country: str | None) -> None:
    assert refused(normalize_phone, phone, country=country) is ErrorCode.INVALID_PHONE


def test_codes_from_pycountry_babel() -> None:
    assert normalize_country("de", field=FIELD) == "DE"
    assert refused(normalize_country, "XX") is ErrorCode.INVALID_COUNTRY
    assert normalize_currency("kwd", field=FIELD) == "KWD"
    for code in ("XXX", "XAU", "EURO", "usd "[:2]):  # no currency, gold, a word, too short
        assert refused(normalize_currency, code) is ErrorCode.INVALID_CURRENCY
    assert normalize_language("PT_br", field=FIELD) == "pt-BR"
    assert refused(normalize_language, "klingon") is ErrorCode.INVALID_LANGUAGE


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1500", "JPY"), ("12.50", "EUR"), ("12.500", "KWD"), ("0.001", "KWD"), ("10.00", "JPY")],
)
def test_amounts_within_the_currencys_minor_units(amount: str, currency: str) -> None:
    assert check_amount(WrittenDecimal(amount), currency, field=FIELD) == Decimal(amount)


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("1500.5", "JPY", ErrorCode.INVALID_AMOUNT_PRECISION),
        ("12.505", "EUR", ErrorCode.INVALID_AMOUNT_PRECISION),
        ("0.0001", "KWD", ErrorCode.INVALID_AMOUNT_PRECISION),
        ("NaN", "EUR", ErrorCode.INVALID_AMOUNT),
        ("Infinity", "EUR", ErrorCode.INVALID_AMOUNT),
        ("1e3", "EUR", ErrorCode.INVALID_AMOUNT),
        ("1000000000000.01", "EUR", ErrorCode.AMOUNT_TOO_LARGE),
    ],
)
def test_amounts_refused_never_rounded(amount: str, currency: str, code: ErrorCode) -> None:
    assert refused(check_amount, WrittenDecimal(amount), currency) is code


def test_positive_amounts() -> None:
    for amount in ("0", "-1"):
        assert (
            refused(check_amount, Decimal(amount), "EUR", positive=True)
            is ErrorCode.AMOUNT_NOT_POSITIVE
        )


def test_password_policy_length_and_guessability() -> None:
    assert (
        check_password("correct horse battery staple", field=FIELD)
        == "correct horse battery staple"
    )
    assert refused(check_password, "Ab1!") is ErrorCode.PASSWORD_TOO_SHORT
    assert refused(check_password, "password1") is ErrorCode.PASSWORD_TOO_WEAK
    # the client's own login makes a password guessable
    assert (
        refused(check_password, "acmetelecom2026", user_inputs=["acmetelecom"])
        is ErrorCode.PASSWORD_TOO_WEAK
    )
    assert refused(check_password, "x" * 257) is ErrorCode.TOO_LONG


def test_strength_for_a_strength_bar() -> None:
    weak = strength("password")
    assert (weak.score, weak.meets_policy) == (0, False)
    assert weak.warning
    short = strength("Zq!9")
    assert short.suggestions[0] == "Use at least 8 characters."
    strong = strength("correct horse battery staple")
    assert (strong.score, strong.meets_policy) == (4, True)


def test_long_passwords_are_not_truncated() -> None:
    from services.auth import hash_password, verify_password

    long = "correct horse battery staple " * 8
    stored = hash_password(long + "A")
    assert verify_password(stored, long + "A")
    assert not verify_password(stored, long + "B")  # the last character still counts


def test_the_default_hashing_meets_owasp() -> None:
    from argon2 import PasswordHasher, Type

    defaults = PasswordHasher()
    # OWASP: argon2id with at least 19 MiB, 2 iterations, 1 lane (or stronger trade-offs)
    assert defaults.type is Type.ID
    assert defaults.memory_cost >= 19 * 1024
    assert defaults.time_cost >= 2


@pytest.mark.parametrize("length", [73, 100, 256])
def test_passwords_longer_than_zxcvbn_reads_are_rated_not_refused(length: int) -> None:
    # zxcvbn raises on more than 72 characters: the rating reads the first 72
    password = ("Zq!9 horse battery " * 20)[:length]
    assert check_password(password, field=FIELD) == password
    assert strength(password).meets_policy


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "ok\udfff"])
def test_text_no_database_can_store_is_refused(value: str) -> None:
    assert refused(text, value, maximum=100) is ErrorCode.INVALID
    assert refused(check_password, value + "long enough passphrase") is ErrorCode.INVALID


def test_text_is_measured_after_trimming() -> None:
    assert text("  " + "x" * 5 + "  ", field=FIELD, maximum=5) == "x" * 5
    assert refused(text, "x" * 6, maximum=5) is ErrorCode.TOO_LONG


def test_maxima_come_from_the_columns() -> None:
    assert column_length(CreditEntry.comment) == 1000
    assert column_length(CreditEntry.comment, AuditEntry.reason) == 500


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("pt_BR", "pt-BR"),
        ("ZH-hant-tw", "zh-Hant-TW"),
        ("en-US-POSIX", "en-US-posix"),
        ("ca-ES-valencia", "ca-ES-valencia"),
        ("es-419", "es-419"),
        ("fil", "fil"),
    ],
)
def test_language_tags_keep_every_part_given(given: str, stored: str) -> None:
    assert normalize_language(given, field=FIELD) == stored


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("en-" + "a" * 4995, ErrorCode.TOO_LONG),
        ("und", ErrorCode.INVALID_LANGUAGE),  # Babel: en-US
        ("en-ZZ", ErrorCode.INVALID_LANGUAGE),  # Babel: en-US
        ("en-Cyrl", ErrorCode.INVALID_LANGUAGE),  # Babel drops the script
        ("de-CH-1996", ErrorCode.INVALID_LANGUAGE),  # Babel drops the variant
        ("iw", ErrorCode.INVALID_LANGUAGE),  # Babel: he-IL
        ("en-\u017fs", ErrorCode.INVALID_LANGUAGE),  # the long s matches [a-z] in Unicode mode
        ("en-u-ca-gregory", ErrorCode.INVALID_LANGUAGE),
        ("", ErrorCode.INVALID_LANGUAGE),
    ],
)
def test_language_tags_never_become_another(given: str, code: ErrorCode) -> None:
    assert refused(normalize_language, given) is code


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("NaN", ErrorCode.OUT_OF_RANGE),
        ("-Infinity", ErrorCode.OUT_OF_RANGE),
        ("100000000000000.0001", ErrorCode.OUT_OF_RANGE),
        ("1e40", ErrorCode.OUT_OF_RANGE),
        ("0.00001", ErrorCode.OUT_OF_RANGE),
        ("100000000000000", None),
        ("-0.0001", None),
        ("1E+3", None),
    ],
)
def test_amounts_compared_with_stored_ones(value: str, refusal: ErrorCode | None) -> None:
    if refusal is None:
        assert check_stored_amount(Decimal(value), field=FIELD) == Decimal(value)
    else:
        assert refused(check_stored_amount, Decimal(value)) is refusal


@pytest.mark.parametrize("login", ["\u212aate", "\u0131van", "\uff4b\uff41\uff54\uff45"])
def test_logins_are_ascii_as_given(login: str) -> None:
    # the Kelvin sign lower-cases to "k", full-width letters are not a-z
    assert refused(normalize_login, login) is ErrorCode.INVALID_LOGIN
