"""Languages: BCP 47 tags, which ones the cabinet is translated into, and the fallback."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.localedata import locale_identifiers

from services.errors import DomainError, ErrorCode


def normalize_language(value: str, *, field: list[str]) -> str:
    """A BCP 47 tag that CLDR knows, in canonical case ("PT_br" becomes "pt-BR")."""
    try:
        locale = Locale.parse(value.strip().replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError):
        raise DomainError(
            ErrorCode.INVALID_LANGUAGE, f"{value!r} is not a known language tag", field
        ) from None
    return "-".join(part for part in (locale.language, locale.script, locale.territory) if part)


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
