"""Who may do what: permission classes for fields, and the gate for anonymous callers."""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from graphql import DocumentNode, GraphQLError
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.utils.str_converters import to_camel_case

from db.enums import Scope
from gql.errors import Forbidden, Unauthenticated
from gql.limits import root_field_names, selected_operation
from services.errors import Denial

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
                raise Forbidden(
                    f"This token lacks the `{scope.value}` scope.",
                    Denial.MISSING_SCOPE,
                    scope=scope.value,
                )
            return True

    _HasScope.__name__ = _HasScope.__qualname__ = f"HasScope_{scope.name}"
    return _HasScope


class AdminsOnly(IsAuthenticated):
    """A staff user with the ADMIN role (whatever the token's scopes)."""

    admins_only = True

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        super().has_permission(source, info, **kwargs)
        if not info.context.viewer.is_admin:
            raise Forbidden("Only admins may do this.", Denial.ADMINS_ONLY)
        return True


def given_inputs(value: Any, names: Mapping[str, Any]) -> list[str]:
    """Which of `names` (python names of an input's fields) the caller gave: a `Maybe` field
    given at all (null included), any other field given other than null."""
    return [name for name in names if getattr(value, name, None) is not None]


@cache
def FieldScopes(argument: str, scopes: tuple[tuple[str, Scope], ...]) -> type[BasePermission]:
    """Fields of the input `argument` that need a scope of their own (the scope of the
    operation that owns what they change): refused, naming the fields, before anything runs."""

    class _FieldScopes(IsAuthenticated):
        field_scopes = scopes
        input_argument = argument

        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            super().has_permission(source, info, **kwargs)
            viewer = info.context.viewer
            needed = dict(scopes)
            missing = [
                name
                for name in given_inputs(kwargs.get(argument), needed)
                if not viewer.has_scope(needed[name])
            ]
            if missing:
                lacking = sorted({needed[name].value for name in missing})
                names = ", ".join(f"`{to_camel_case(name)}`" for name in missing)
                raise Forbidden(
                    f"This token lacks the `{'`, `'.join(lacking)}` scope for {names}.",
                    Denial.MISSING_SCOPE,
                    scope=", ".join(lacking),
                    fields=[[argument, to_camel_case(name)] for name in missing],
                )
            return True

    _FieldScopes.__name__ = _FieldScopes.__qualname__ = f"FieldScopes_{argument}"
    return _FieldScopes


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may use one root field: the token scope it needs, whether only admins may, and
    the input fields that need a scope of their own (path, scope)."""

    operation: str
    kind: str  # query or mutation
    scope: Scope | None
    admins_only: bool
    public: bool
    fields: tuple[tuple[str, Scope], ...] = ()


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
                    fields=tuple(
                        (f"{getattr(p, 'input_argument', '')}.{to_camel_case(input_name)}", needs)
                        for p in permissions
                        for input_name, needs in getattr(p, "field_scopes", ())
                    ),
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
        manager = _manager(rule.kind, rule.scope, rule.admins_only)
        lines.append(f"| `{rule.operation}` | {rule.kind} | {scope} | yes | {manager} |")
        for path, field_scope in rule.fields:
            manager = _manager(rule.kind, field_scope, rule.admins_only)
            lines.append(
                f"| `{rule.operation}` `{path}` | input field | `{field_scope.value}` "
                f"| yes | {manager} |"
            )
    return "\n".join(lines) + "\n"


def _manager(kind: str, scope: Scope | None, admins_only: bool) -> str:
    if admins_only or scope is Scope.STAFF_ADMIN:
        return "no"
    if kind == "mutation" and scope in CLIENT_CHANGES:
        return "own clients"
    return "yes"


def refuse_anonymous(
    context: Any, document: DocumentNode, operation_name: str | None
) -> GraphQLError | None:
    """The UNAUTHENTICATED error for a caller without a valid token, unless the operation only
    selects public fields (signing in). Checked before validation, so that strangers learn
    nothing about the schema (no field suggestions, no introspection) and cost no more than
    a walk of their document."""
    if context.viewer is not None:
        return None
    operation = selected_operation(document, operation_name)
    names = root_field_names(document, operation) if operation is not None else set()
    if names and names <= PUBLIC_ROOT_FIELDS:
        return None
    return unauthenticated(context)
