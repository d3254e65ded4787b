"""Who may do what: permission classes for fields, and the gate for anonymous callers."""

from collections.abc import Iterator
from dataclasses import dataclass
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
from strawberry.permission import BasePermission, PermissionExtension

from db.enums import Scope
from gql.errors import Forbidden, Unauthenticated

# The only root fields an anonymous caller may select.
PUBLIC_ROOT_FIELDS = frozenset({"staffLogin", "__typename"})
# What an anonymous caller is told, by `extensions.reason` (never the token it sent).
UNAUTHENTICATED = {
    "missing": "Authentication required: send `Authorization: Bearer <token>`.",
    "unknown": "The token is unknown: sign in again, or ask an admin for a new token.",
    "expired": "The token has expired: sign in again, or ask an admin for a new token.",
    "revoked": "The token was revoked (or its owner deactivated).",
}


def unauthenticated(context: Any) -> Unauthenticated:
    """The error for a request without a viewer: no token, or why the one sent was refused."""
    reason = str(context.token_refusal) if context.token_refusal else "missing"
    return Unauthenticated(UNAUTHENTICATED[reason], reason=reason)


class IsAuthenticated(BasePermission):
    """Any authenticated staff user."""

    required_scope: Scope | None = None
    admins_only = False

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        if info.context.viewer is None:
            raise unauthenticated(info.context)
        return True


@cache
def HasScope(scope: Scope) -> type[BasePermission]:
    """Authenticated with a token that holds `scope`."""

    class _HasScope(IsAuthenticated):
        required_scope = scope

        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            super().has_permission(source, info, **kwargs)
            if not info.context.viewer.has_scope(scope):
                raise Forbidden(f"This token lacks the `{scope.value}` scope.", scope=scope.value)
            return True

    _HasScope.__name__ = _HasScope.__qualname__ = f"HasScope_{scope.name}"
    return _HasScope


class AdminsOnly(IsAuthenticated):
    """A staff user with the ADMIN role (whatever the token's scopes)."""

    admins_only = True

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        super().has_permission(source, info, **kwargs)
        if not info.context.viewer.is_admin:
            raise Forbidden("Only admins may do this.")
        return True


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may use one root field: the token scope it needs, and whether only admins may."""

    operation: str
    kind: str  # query or mutation
    scope: Scope | None
    admins_only: bool
    public: bool


def authorization_matrix(schema: Any) -> list[Rule]:
    """The rules of every root field, read from the permission classes on the fields (the one
    place they are declared); the README's table and the matrix tests are made from this."""
    rules = []
    for kind, root in (("query", schema.query), ("mutation", schema.mutation)):
        for field in root.__strawberry_definition__.fields:
            name = schema.config.name_converter.get_graphql_name(field)
            permissions = [
                permission
                for extension in field.extensions
                if isinstance(extension, PermissionExtension)
                for permission in extension.permissions
            ]
            scopes = [getattr(p, "required_scope", None) for p in permissions]
            scopes = [scope for scope in scopes if scope is not None]
            rules.append(
                Rule(
                    operation=name,
                    kind=kind,
                    scope=scopes[0] if scopes else None,
                    admins_only=any(getattr(p, "admins_only", False) for p in permissions),
                    public=name in PUBLIC_ROOT_FIELDS,
                )
            )
    return sorted(rules, key=lambda rule: (rule.kind, rule.operation))


# What these scopes change belongs to a client: managers may do it to their own clients and
# those clients' sub-accounts (services.clients.may_change checks each client).
CLIENT_CHANGES = frozenset(
    {
        Scope.CLIENTS_WRITE,
        Scope.CLIENTS_DELETE,
        Scope.CREDITS_WRITE,
        Scope.PRICING_WRITE,
        Scope.CLIENTS_IMPERSONATE,
    }
)


def matrix_table(rules: list[Rule]) -> str:
    """The matrix as the README's markdown table."""
    lines = [
        "| operation | kind | token scope | ADMIN | MANAGER |",
        "|---|---|---|:---:|:---:|",
    ]
    for rule in rules:
        if rule.public:
            scope = "none: public"
        else:
            scope = f"`{rule.scope.value}`" if rule.scope else "any"
        if rule.admins_only or rule.scope is Scope.STAFF_ADMIN:
            manager = "no"
        elif rule.kind == "mutation" and rule.scope in CLIENT_CHANGES:
            manager = "own clients"
        else:
            manager = "yes"
        lines.append(f"| `{rule.operation}` | {rule.kind} | {scope} | yes | {manager} |")
    return "\n".join(lines) + "\n"


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
            execution.pre_execution_errors = [unauthenticated(context)]
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
