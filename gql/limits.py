"""Limits on what one request may ask, checked before anything runs.

Each refusal is a top-level error with its own `extensions.code`:

| limit | default | code |
|---|---|---|
| tokens in the document | 1,000 | TOO_MANY_TOKENS |
| field depth (introspection excepted) | 12 | QUERY_TOO_DEEP |
| aliases, counted through fragments | 15 | TOO_MANY_ALIASES |
| directives | 50 | TOO_MANY_DIRECTIVES |
| nodes a query may return (GitHub's model: page sizes multiply) | 50,000 | QUERY_TOO_COSTLY |
| validation errors reported | 3 | (the rest are dropped) |
"""

import contextlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    parse,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

DEFAULT_PAGE_SIZE = 10
MUTATION_POINTS = 10
NODES_PER_POINT = 100


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one deployment (from settings)."""

    max_tokens: int = 1_000
    max_depth: int = 12
    max_aliases: int = 15
    max_directives: int = 50
    max_nodes: int = 50_000
    max_errors: int = 3


def limit_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    """The deepest chain of fields below a selection set, through fragments; introspection
    (`__schema`, `__type`) is bounded by the schema itself and not counted."""
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                fragment = fragments[name]
                deepest = max(deepest, _depth(fragment.selection_set, fragments, seen | {name}))
    return deepest


def _aliases(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    """Aliases below a selection set, a fragment's counted each time it is spread."""
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += (selection.alias is not None) + _aliases(
                selection.selection_set, fragments, seen
            )
        elif isinstance(selection, InlineFragmentNode):
            total += _aliases(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                total += _aliases(fragments[name].selection_set, fragments, seen | {name})
    return total


@lru_cache(maxsize=16)
def validation_rules(limits: Limits) -> tuple[type[ValidationRule], ...]:
    """Rules for depth, aliases and directives, made once per set of limits."""

    class DocumentLimits(ValidationRule):
        def enter_document(self, document: DocumentNode, *_: Any) -> None:
            fragments = _fragments(document)
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            depth = max((_depth(o.selection_set, fragments) for o in operations), default=0)
            if depth > limits.max_depth:
                self.report_error(
                    limit_error(
                        "QUERY_TOO_DEEP",
                        f"The query is {depth} fields deep; at most {limits.max_depth}.",
                    )
                )
            aliases = sum(_aliases(o.selection_set, fragments) for o in operations)
            if aliases > limits.max_aliases:
                self.report_error(
                    limit_error(
                        "TOO_MANY_ALIASES", f"{aliases} aliases; at most {limits.max_aliases}."
                    )
                )

        directives = 0

        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            self.directives += 1
            if self.directives == limits.max_directives + 1:
                self.report_error(
                    limit_error(
                        "TOO_MANY_DIRECTIVES", f"More than {limits.max_directives} directives."
                    )
                )

    return (DocumentLimits,)


def _argument(node: FieldNode, name: str, variables: Mapping[str, Any]) -> Any:
    for argument in node.arguments or ():
        if argument.name.value == name:
            return value_from_ast_untyped(argument.value, dict(variables))
    return None


def count_nodes(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """How many objects the operation may return, as GitHub counts: every connection asks for
    its page size (`first`/`last`, default 10) times the page sizes of the connections above."""
    fragments = _fragments(document)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return 0
    operation = operations[0]
    root = schema.get_root_type(operation.operation)
    return _nodes(schema, root, operation.selection_set, fragments, variables or {}, 1, frozenset())


def _nodes(
    schema: GraphQLSchema,
    parent: Any,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    multiplier: int,
    seen: frozenset[str],
) -> int:
    if selection_set is None or parent is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            fields = getattr(parent, "fields", None)
            if name.startswith("__") or not fields or name not in fields:
                continue
            definition = fields[name]
            child_multiplier = multiplier
            if "first" in definition.args or "last" in definition.args:
                size = _argument(selection, "first", variables) or _argument(
                    selection, "last", variables
                )
                size = size if isinstance(size, int) and size > 0 else DEFAULT_PAGE_SIZE
                total += multiplier * size
                child_multiplier = multiplier * size
            elif "ids" in definition.args:
                ids = _argument(selection, "ids", variables)
                size = len(ids) if isinstance(ids, list) else 1
                total += multiplier * size
            total += _nodes(
                schema,
                get_named_type(definition.type),
                selection.selection_set,
                fragments,
                variables,
                child_multiplier,
                seen,
            )
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = schema.get_type(condition.name.value) if condition else parent
            total += _nodes(
                schema, target, selection.selection_set, fragments, variables, multiplier, seen
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                fragment = fragments[name]
                target = schema.get_type(fragment.type_condition.name.value)
                total += _nodes(
                    schema,
                    target,
                    fragment.selection_set,
                    fragments,
                    variables,
                    multiplier,
                    seen | {name},
                )
    return total


def points(*, mutation: bool, nodes: int, fields: int) -> int:
    """The rate-limit cost: a point per 100 nodes (at least one), ten per mutation field."""
    if mutation:
        return max(1, fields) * MUTATION_POINTS
    return max(1, math.ceil(nodes / NODES_PER_POINT))


@lru_cache(maxsize=1024)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class ParseCache(SchemaExtension):
    """Parsed documents, cached. Unlike strawberry's ParserCache it leaves a document that does
    not parse to strawberry, which parses it again inside its own error handling (an error
    raised here would escape the other extensions' `on_operation`, ErrorMasking's included)."""

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.query is not None:
            with contextlib.suppress(GraphQLError):
                max_tokens = execution.context.limits.max_tokens
                execution.graphql_document = _parse(execution.query, max_tokens)
        yield


class QueryLimits(SchemaExtension):
    """Adds the limit rules and the token limit to the operation (before parsing), and turns
    introspection off where the settings say so."""

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        limits: Limits = context.limits
        execution.parse_options["max_tokens"] = limits.max_tokens
        rules = validation_rules(limits)
        if not context.settings.introspection_enabled:
            rules = (*rules, NoSchemaIntrospectionCustomRule)
        execution.validation_rules = execution.validation_rules + rules
        yield


SUGGESTION = re.compile(r" Did you mean .*\?$")


class ValidationErrorLimit(SchemaExtension):
    """At most `max_errors` validation errors, and no "Did you mean ...?" schema hints for
    callers without a token. Runs after ValidationCache, before the errors are returned."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        errors = execution.pre_execution_errors
        if errors:
            kept = list(errors[: execution.context.limits.max_errors])
            if execution.context.viewer is None:
                kept = [_without_suggestion(error) for error in kept]
            execution.pre_execution_errors = kept
        yield


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    message = SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(message, nodes=error.nodes, extensions=error.extensions)
