"""Managing custom field definitions (admins)."""

from typing import Annotated

import strawberry

from db.enums import Scope
from gql.arguments import kept_when_left_out
from gql.context import Info
from gql.enums import CustomFieldType
from gql.errors import UserError, attempt
from gql.node import pk_of, to_global_id
from gql.permissions import HasScope
from gql.reference.types import CustomFieldDefinition
from services import custom_fields


@strawberry.input(description="A new custom client field.")
class CustomFieldDefinitionCreateInput:
    key: str = strawberry.field(description="Stable key: a-z first, then a-z, 0-9, '_'.")
    label: str = strawberry.field(description="Label for people.")
    type: CustomFieldType = strawberry.field(description="What values it takes.")
    options: list[str] | None = strawberry.field(
        default=None, description="SELECT only: the allowed values."
    )
    required: bool = strawberry.field(
        default=False,
        description="Every new client needs a value, and no change may remove or blank it "
        "(`CUSTOM_FIELD_REQUIRED`).",
    )
    position: int = strawberry.field(default=0, description="Display order (ascending).")


@strawberry.input(description="Changes to a custom field; the key and type stay.")
class CustomFieldDefinitionUpdateInput:
    label: strawberry.Maybe[str | None] = kept_when_left_out("New label.")
    options: strawberry.Maybe[list[str] | None] = kept_when_left_out(
        "SELECT only: all allowed values (ones in use must stay)."
    )
    required: strawberry.Maybe[bool | None] = kept_when_left_out(
        "Required from now on (see `CustomFieldDefinitionCreateInput.required`); clients "
        "without a value keep it missing until a change sets it."
    )
    position: strawberry.Maybe[int | None] = kept_when_left_out("Order.")


@strawberry.type(description="The result of a change to a custom field definition.")
class CustomFieldDefinitionPayload:
    custom_field_definition: CustomFieldDefinition | None = strawberry.field(
        description="The definition as it is now; null if refused."
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="The result of `customFieldDefinitionDelete`.")
class CustomFieldDefinitionDeletePayload:
    deleted_id: strawberry.ID | None = strawberry.field(description="The removed definition.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


ADMIN = [HasScope(Scope.STAFF_ADMIN)]
IdArg = Annotated[strawberry.ID, strawberry.argument(description="The definition's global ID.")]


def definition_pk(value: strawberry.ID) -> int:
    return pk_of(value, "CustomFieldDefinition") or 0


@strawberry.type
class CustomFieldMutation:
    @strawberry.mutation(description="Define a custom client field.", permission_classes=ADMIN)
    async def custom_field_definition_create(
        self,
        info: Info,
        input: Annotated[
            CustomFieldDefinitionCreateInput, strawberry.argument(description="The field.")
        ],
    ) -> CustomFieldDefinitionPayload:
        definition, errors = await attempt(
            info,
            custom_fields.create_definition,
            key=input.key,
            label=input.label,
            type=input.type,
            options=input.options,
            required=input.required,
            position=input.position,
        )
        return CustomFieldDefinitionPayload(
            custom_field_definition=CustomFieldDefinition.from_orm(definition)
            if definition
            else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        description="Change a custom field's label, options, required flag or position.",
        permission_classes=ADMIN,
    )
    async def custom_field_definition_update(
        self,
        info: Info,
        id: IdArg,
        input: Annotated[
            CustomFieldDefinitionUpdateInput, strawberry.argument(description="The changes.")
        ],
    ) -> CustomFieldDefinitionPayload:
        changes = {
            name: getattr(input, name).value
            for name in ("label", "options", "required", "position")
            if getattr(input, name) is not None
        }
        definition, errors = await attempt(
            info,
            custom_fields.update_definition,
            paths={"id": ("id",)},
            definition_id=definition_pk(id),
            changes=changes,
        )
        return CustomFieldDefinitionPayload(
            custom_field_definition=CustomFieldDefinition.from_orm(definition)
            if definition
            else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        description="Remove a custom field and every client's value for it.",
        permission_classes=ADMIN,
    )
    async def custom_field_definition_delete(
        self, info: Info, id: IdArg
    ) -> CustomFieldDefinitionDeletePayload:
        pk = definition_pk(id)
        _, errors = await attempt(
            info, custom_fields.delete_definition, prefix=(), definition_id=pk
        )
        return CustomFieldDefinitionDeletePayload(
            deleted_id=None if errors else to_global_id("CustomFieldDefinition", pk),
            user_errors=errors,
        )
