"""GraphQL types for reference data."""

from typing import Any

import strawberry
from strawberry.scalars import JSON

from db.queries import AnyRow
from gql.enums import CustomFieldType
from gql.node import Node, to_global_id


@strawberry.type(description="A helpdesk department a client may be allowed to reach.")
class Department(Node):
    name: str = strawberry.field(description="Name, unique.")

    @classmethod
    def from_row(cls, row: AnyRow) -> "Department":
        return cls(id=to_global_id("Department", row.id), name=row.name)


@strawberry.type(description="A helpdesk category a client may be allowed to use.")
class Category(Node):
    name: str = strawberry.field(description="Name, unique.")

    @classmethod
    def from_row(cls, row: AnyRow) -> "Category":
        return cls(id=to_global_id("Category", row.id), name=row.name)


@strawberry.type(description="An extra field, defined by admins, that every client may fill.")
class CustomFieldDefinition(Node):
    key: str = strawberry.field(description="Stable key for programs, unique.")
    label: str = strawberry.field(description="Label for people.")
    type: CustomFieldType = strawberry.field(description="What values it takes.")
    options: list[str] | None = strawberry.field(description="For SELECT: the allowed values.")
    required: bool = strawberry.field(
        description="Whether new clients need a value and no change may remove it (clients "
        "that lacked one when it became required may lack it until a change sets it)."
    )
    position: int = strawberry.field(description="Display order (ascending).")
    pk: strawberry.Private[int]

    @classmethod
    def from_orm(cls, row: Any) -> "CustomFieldDefinition":
        """From the ORM object a service returns (it has the same attributes as a row)."""
        return cls.from_row(row)

    @classmethod
    def from_row(cls, row: AnyRow) -> "CustomFieldDefinition":
        return cls(
            id=to_global_id("CustomFieldDefinition", row.id),
            key=row.key,
            label=row.label,
            type=row.type,
            options=row.options,
            required=row.required,
            position=row.position,
            pk=row.id,
        )


@strawberry.type(description="A client's value for one custom field.")
class CustomFieldValue:
    definition: CustomFieldDefinition = strawberry.field(description="The field.")
    value: JSON | None = strawberry.field(
        description="String, number, boolean, date string or option by the field's type; "
        "null when the client has no value."
    )


@strawberry.type(description="A country (ISO 3166-1).")
class Country:
    code: str = strawberry.field(description='Alpha-2 code, e.g. "DE".')
    name: str = strawberry.field(description="English name.")


@strawberry.type(description="A currency (ISO 4217).")
class Currency:
    code: str = strawberry.field(description='Code, e.g. "EUR".')
    name: str = strawberry.field(description="English name.")
    minor_units: int = strawberry.field(description="Decimals amounts use: 0 for JPY, 3 for KWD.")


@strawberry.type(description="A language a client may prefer (BCP 47).")
class Language:
    tag: str = strawberry.field(description='BCP 47 tag, e.g. "pt-BR".')
    name: str = strawberry.field(description="English name.")
    native_name: str = strawberry.field(description="Name in the language itself.")
    has_translation: bool = strawberry.field(
        description="Whether the client cabinet is translated into it; clients with other "
        "languages see the default language."
    )
