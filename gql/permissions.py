"""Who may do what: permission classes for fields, and the gate for anonymous callers."""

from collections.abc import Iterator
from functools import cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission

from db.enums import Scope
from gql.errors import Forbidden, Unauthenticated

# The only root fields an anonymous caller may select.
PUBLIC_ROOT_FIELDS = frozenset({"staffLogin", "__typename"})
MISSING_TOKEN = "Authentication required: send `Authorization: Bearer <token>`."
BAD_TOKEN = "The token is unknown, expired or revoked."


class IsAuthenticated(BasePermission):
    """Any authenticated staff user."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        if info.context.viewer is None:
            raise Unauthenticated(MISSING_TOKEN)
        return True


@cache
def HasScope(scope: Scope) -> type[BasePermission]:
    """Authenticated with a token that holds `scope`."""

    class _HasScope(BasePermission):
        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            viewer = info.context.viewer
            if viewer is None:
                raise Unauthenticated(MISSING_TOKEN)
            if not viewer.has_scope(scope):
                raise Forbidden(f"This token lacks the `{scope.value}` scope.", scope=scope.value)
            return True

    _HasScope.__name__ = _HasScope.__qualname__ = f"HasScope_{scope.name}"
    return _HasScope


class AuthenticationGate(SchemaExtension):
    """Refuse an anonymous operation before execution unless it only selects public fields.

    It replaces whatever validation found, so strangers learn nothing about the schema (no
    field suggestions, no introspection). Strawberry checks the errors before the validation
    hooks resume, so this runs before `yield` and must come after ValidationCache in the
    schema's extensions (which sets the errors wholesale).
    """

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if context.viewer is None and not (
            document is not None and _selects_only_public_fields(document, execution.operation_name)
        ):
            message = BAD_TOKEN if context.credentials_given else MISSING_TOKEN
            execution.pre_execution_errors = [Unauthenticated(message)]
        yield


def _selects_only_public_fields(document: DocumentNode, operation_name: str | None) -> bool:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names = set(_root_field_names(operations[0].selection_set, fragments, set()))
    return bool(names) and names <= PUBLIC_ROOT_FIELDS


def _root_field_names(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_field_names(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in fragments:
                yield "<unknown fragment>"
            elif name not in seen:
                seen.add(name)
                yield from _root_field_names(fragments[name].selection_set, fragments, seen)
