"""Languages: BCP 47 tags, which ones the cabinet is translated into, and the fallback."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.localedata import locale_identifiers

from services.errors import DomainError, ErrorCode
from services.validation import quoted, too_long

MAX_TAG = 35  # the column's length (real tags are far shorter)
# A BCP 47 (RFC 5646) language tag as a client's language: a language subtag, then an
# optional script, region and variant; no extensions or private use. ASCII only.
TAG = re.compile(
    r"(?P<language>[a-z]{2,3})(?:-(?P<script>[a-z]{4}))?(?:-(?P<region>[a-z]{2}|[0-9]{3}))?"
    r"(?:-(?P<variant>[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))?",
    re.ASCII | re.IGNORECASE,
)


def normalize_language(value: str, *, field: list[str]) -> str:
    """A BCP 47 tag that CLDR knows, as given in canonical case ("PT_br" becomes "pt-BR");
    never a different tag (Babel reads "und" as en-US, "en-ZZ" as en-US: those are refused)."""
    tag = value.strip().replace("_", "-")
    too_long(tag, MAX_TAG, field=field)
    match = TAG.fullmatch(tag)
    given = None
    if match is not None:
        given = (
            match["language"].lower(),
            match["script"] and match["script"].title(),
            match["region"] and match["region"].upper(),
            match["variant"] and match["variant"].lower(),
        )
        try:
            locale = Locale.parse("_".join(part for part in given if part))
        except (ValueError, UnknownLocaleError):
            given = None
        else:
            read = (
                locale.language,
                given[1] and locale.script,
                given[2] and locale.territory,
                given[3] and (locale.variant or "").lower(),
            )
            if read != given:  # Babel replaced or dropped a part: not the tag given
                given = None
    if given is None:
        raise DomainError(
            ErrorCode.INVALID_LANGUAGE, f"{quoted(value)} is not a known language tag", field
        )
    return "-".join(part for part in given if part)


def effective_language(language: str | None, *, translations: Sequence[str], default: str) -> str:
    """The translation to show: the exact tag, else its language part, else the default."""
    if not language:
        return default
    available = {tag.lower(): tag for tag in translations}
    tag = language.lower()
    return available.get(tag) or available.get(tag.split("-")[0]) or default


@dataclass(frozen=True, slots=True)
class LanguageInfo:
    tag: str
    name: str
    native_name: str


@lru_cache(maxsize=1)
def known_languages() -> tuple[LanguageInfo, ...]:
    """Every language CLDR names (without regional variants), sorted by English name."""
    languages = []
    for identifier in locale_identifiers():
        if "_" in identifier:
            continue
        locale = Locale.parse(identifier)
        languages.append(
            LanguageInfo(
                tag=identifier,
                name=locale.get_display_name("en") or identifier,
                native_name=locale.display_name or identifier,
            )
        )
    return tuple(sorted(languages, key=lambda language: language.name))


def language_info(tag: str) -> LanguageInfo:
    """Names of one tag (regional variants included)."""
    locale = Locale.parse(tag, sep="-")
    return LanguageInfo(tag, locale.get_display_name("en") or tag, locale.display_name or tag)
