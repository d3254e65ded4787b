"""Reference data for drop-downs: from the database, or from pycountry and Babel."""

from functools import lru_cache

import pycountry
import strawberry
from babel.numbers import get_currency_name
from sqlalchemy import select

from db.models import Category as CategoryModel
from db.models import Department as DepartmentModel
from gql.context import Info
from gql.permissions import IsAuthenticated
from gql.reference.types import (
    Category,
    Country,
    Currency,
    CustomFieldDefinition,
    Department,
    Language,
)
from services.languages import known_languages, language_info
from services.money import minor_units, tender_currencies


@lru_cache(maxsize=1)
def all_countries() -> tuple[Country, ...]:
    countries = (Country(code=c.alpha_2, name=c.name) for c in pycountry.countries)
    return tuple(sorted(countries, key=lambda country: country.name))


@lru_cache(maxsize=1)
def all_currencies() -> tuple[Currency, ...]:
    return tuple(
        Currency(
            code=code, name=get_currency_name(code, locale="en"), minor_units=minor_units(code)
        )
        for code in sorted(tender_currencies())
    )


@strawberry.type
class ReferenceQuery:
    @strawberry.field(
        description="Helpdesk departments, by name.", permission_classes=[IsAuthenticated]
    )
    async def departments(self, info: Info) -> list[Department]:
        rows = await info.context.db.rows(
            select(DepartmentModel.__table__).order_by(DepartmentModel.name)
        )
        return [Department.from_row(row) for row in rows]

    @strawberry.field(
        description="Helpdesk categories, by name.", permission_classes=[IsAuthenticated]
    )
    async def categories(self, info: Info) -> list[Category]:
        rows = await info.context.db.rows(
            select(CategoryModel.__table__).order_by(CategoryModel.name)
        )
        return [Category.from_row(row) for row in rows]

    @strawberry.field(
        description="Custom client fields, in display order.", permission_classes=[IsAuthenticated]
    )
    async def custom_field_definitions(self, info: Info) -> list[CustomFieldDefinition]:
        rows = await info.context.loaders.custom_field_definitions.load("all")
        return [CustomFieldDefinition.from_row(row) for row in rows]

    @strawberry.field(
        description="Every ISO 3166-1 country, by English name: the choices of the client "
        "form. A filter panel offers the countries clients are in, with counts: "
        "`clientFacets.countries`.",
        permission_classes=[IsAuthenticated],
    )
    def countries(self) -> list[Country]:
        return list(all_countries())

    @strawberry.field(
        description="Every ISO 4217 currency in use as legal tender, by code, with its minor "
        "units (CLDR data): the choices of the client form. A filter panel offers the "
        "currencies clients use, with counts: `clientFacets.currencies`.",
        permission_classes=[IsAuthenticated],
    )
    def currencies(self) -> list[Currency]:
        return list(all_currencies())

    @strawberry.field(
        description="Languages a client may choose, by English name; `hasTranslation` marks "
        "the ones the cabinet is translated into.",
        permission_classes=[IsAuthenticated],
    )
    def languages(self, info: Info) -> list[Language]:
        translated = {tag.lower() for tag in info.context.settings.translations}
        infos = {info.tag.lower(): info for info in known_languages()}
        for tag in info.context.settings.translations:  # regional translations, e.g. pt-BR
            infos.setdefault(tag.lower(), language_info(tag))
        return [
            Language(
                tag=language.tag,
                name=language.name,
                native_name=language.native_name,
                has_translation=key in translated,
            )
            for key, language in sorted(infos.items(), key=lambda item: item[1].name)
        ]
