"""What every request passes before it runs, cheapest first, each in time linear in its size:
the token limit while parsing; then, before validation, the gate for callers without a valid
token and the document limits (gql/limits.py); then graphql-core's validation, cached. The
node limit and the rate limit follow just before execution (gql/throttling.py)."""

import contextlib
from collections.abc import Iterator
from functools import lru_cache

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    ValidationRule,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gql.errors import without_suggestion
from gql.limits import check_document
from gql.permissions import refuse_anonymous


@lru_cache(maxsize=1024)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class ParseCache(SchemaExtension):
    """Parsed documents, cached, with the caller's token limit. Unlike strawberry's
    ParserCache it leaves a document that does not parse to strawberry, which parses it again
    inside its own error handling (an error raised here would escape the other extensions'
    `on_operation`, ErrorMasking's included)."""

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        execution.parse_options["max_tokens"] = context.limits.tokens_for(
            anonymous=context.viewer is None
        )
        yield

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.query is not None:
            with contextlib.suppress(GraphQLError):
                max_tokens = execution.parse_options["max_tokens"]
                execution.graphql_document = _parse(execution.query, max_tokens)
        yield


@lru_cache(maxsize=512)
def _validate(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    rules: tuple[type[ValidationRule], ...],
) -> list[GraphQLError]:
    # keyed by the query text (hashing a document walks all of it); the document comes along
    return validate_document(schema, document, rules)


class DocumentChecks(SchemaExtension):
    """Before validation: refuse callers without a valid token unless they only sign in, and
    documents over the limits; then validate (cached), keep at most `max_errors` errors, and
    give schema hints ("Did you mean …?") only to staff who may see the schema.

    It runs the validation itself (strawberry skips its own when errors are set), so it
    replaces strawberry's ValidationCache."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        assert document is not None  # parsing failed otherwise
        refused = refuse_anonymous(context, document, execution.operation_name)
        errors = [refused] if refused else check_document(document, context.limits)
        if not errors:
            rules = tuple(execution.validation_rules)
            if not context.settings.introspection_enabled:
                rules = (*rules, NoSchemaIntrospectionCustomRule)
            found = (
                _validate(execution.schema._schema, execution.query, document, rules)
                if execution.query is not None
                else validate_document(execution.schema._schema, document, rules)
            )
            errors = list(found[: context.limits.max_errors])
            if context.hide_suggestions:
                errors = [without_suggestion(error) for error in errors]
        execution.pre_execution_errors = errors
        yield
