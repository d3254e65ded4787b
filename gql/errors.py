"""How failures reach callers: `userErrors` for rules, top-level errors with a code otherwise."""

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from uuid import uuid4

import strawberry
import structlog
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.utils.str_converters import to_camel_case

from db.session import begin_write, lost_race, write_turn
from gql.enums import UserErrorCode
from services.actors import Actor
from services.errors import (
    Denial,
    DomainError,
    ErrorCode,
    PermissionDenied,
    ValidationFailed,
)

log = structlog.get_logger("clientdesk.graphql")


@strawberry.type(description="A rule the input broke; the mutation changed nothing.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path into the mutation\'s arguments, e.g. ["input", "email"]; '
        "null when the error is about the whole request."
    )
    code: UserErrorCode = strawberry.field(description="Stable code for programs to act on.")
    message: str = strawberry.field(description="Explanation for people.")


def user_errors(
    error: DomainError | ValidationFailed,
    *,
    prefix: Sequence[str] = ("input",),
    paths: Mapping[str, Sequence[str]] | None = None,
) -> list[UserError]:
    """The userErrors entries for a refused mutation. Services name fields in snake_case and
    list positions as numbers; the path becomes the API's camelCase names under `prefix`, or
    where `paths` puts a field the service names otherwise (its "id" is the mutation's
    `id` argument, or an input's `clientId`)."""
    errors = error.errors if isinstance(error, ValidationFailed) else [error]
    return [
        UserError(field=_path(e.field, prefix, paths or {}), code=e.code, message=e.message)
        for e in errors
    ]


def _path(
    field: Sequence[str] | None, prefix: Sequence[str], paths: Mapping[str, Sequence[str]]
) -> list[str] | None:
    if not field:
        return None
    head, *rest = field
    start = list(paths[head]) if head in paths else [*prefix, to_camel_case(head)]
    return [*start, *(to_camel_case(step) for step in rest)]


T = TypeVar("T")


async def attempt(
    info: Any,
    service: Callable[..., Awaitable[T]],
    *,
    prefix: Sequence[str] = ("input",),
    paths: Mapping[str, Sequence[str]] | None = None,
    **arguments: Any,
) -> tuple[T | None, list[UserError]]:
    """Run a service with the request's session and the viewer as actor: its result and no
    errors, or None and the userErrors it raised. A PermissionDenied becomes FORBIDDEN."""
    context = info.context
    actor = Actor.of(context.viewer, now=context.now, request_id=context.request_id)
    try:
        async with context.db.exclusive() as session, write_turn(session):
            result = await run_retrying(session, service, actor, arguments)
    except (DomainError, ValidationFailed) as error:
        return None, user_errors(error, prefix=prefix, paths=paths)
    except PermissionDenied as denied:
        fields = [_path(field, prefix, paths or {}) for field in denied.fields]
        raise Forbidden(str(denied), denied.reason, fields=fields) from None
    finally:
        context.forget_loaded()  # what the change touched must be read again
    return result, []


# How often a change that lost a race (a deadlock, a serialization failure) runs again, from
# the start in a new transaction, before it is answered with CONFLICT.
RUNS = 4


async def run_retrying(
    session: AsyncSession,
    service: Callable[..., Awaitable[T]],
    actor: Actor,
    arguments: dict[str, Any],
) -> T:
    """The service's result, run again from the start in a new transaction (up to RUNS times)
    while it loses a race in the database; then DomainError CONFLICT."""
    for run in range(1, RUNS + 1):
        try:
            await begin_write(session)
            return await service(session, actor=actor, **arguments)
        except DBAPIError as error:
            await session.rollback()
            if not lost_race(error):
                raise
            log.info("change_retried", run=run, error=type(error.orig).__name__)
    raise DomainError(
        ErrorCode.CONFLICT,
        "Concurrent changes of the same records kept getting in the way; try again",
    )


class ApiError(GraphQLError):
    """A top-level error we raise on purpose; its message is safe to show."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class BadUserInput(ApiError):
    code = "BAD_USER_INPUT"


class Unauthenticated(ApiError):
    """No valid token; `extensions.reason` says why (gql/permissions.py: `unauthenticated`)."""

    code = "UNAUTHENTICATED"


class Forbidden(ApiError):
    """Not allowed, whoever asks how: `extensions.reason` says why (services.errors.Denial),
    with `scope` for a missing scope and `fields` for the inputs it is about."""

    code = "FORBIDDEN"

    def __init__(self, message: str, reason: Denial, **extensions: Any) -> None:
        given = {name: value for name, value in extensions.items() if value}
        super().__init__(message, reason=reason.value, **given)


class ErrorMasking(SchemaExtension):
    """Every error gets `extensions.code`; unexpected exceptions are logged and hidden.

    A resolver's unexpected exception becomes "Internal server error" with the request id,
    so the caller can quote it and the operator can find the full trace in the logs.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._present(error) for error in result.errors]
        if result.data is None and all(
            (error.extensions or {}).get("code") in REQUEST_ERRORS for error in result.errors
        ):
            # nothing ran: the request itself was wrong (see gql/app.py for what that changes)
            self.execution_context.context.request_error = True

    def _present(self, error: GraphQLError) -> GraphQLError:
        if self.execution_context.context.hide_suggestions:
            error = without_suggestion(error)
        original = error.original_error
        if original is None:  # syntax and validation: about the request, safe to show
            if "Document contains more than" in error.message:  # graphql-core's token limit
                return _with_code(error, "TOO_MANY_TOKENS")
            syntax = error.message.startswith("Syntax Error")
            return _with_code(
                error, "GRAPHQL_PARSE_FAILED" if syntax else "GRAPHQL_VALIDATION_FAILED"
            )
        if isinstance(original, GraphQLError):  # raised on purpose, with a safe message
            return _with_code(error, "BAD_USER_INPUT")
        if error.path is None:  # a variable our scalars refused; their messages are ours
            return _with_code(error, "BAD_USER_INPUT")
        request_id = getattr(self.execution_context.context, "request_id", None) or uuid4().hex
        log.error(
            "resolver_failed",
            path=error.path,
            request_id=request_id,
            exc_info=(type(original), original, original.__traceback__),
        )
        return GraphQLError(
            f"Internal server error. Quote request id {request_id} when reporting it.",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


# Codes of errors found before execution, in the request itself.
REQUEST_ERRORS = frozenset(
    {
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "TOO_MANY_TOKENS",
        "QUERY_TOO_DEEP",
        "TOO_MANY_ALIASES",
        "TOO_MANY_DIRECTIVES",
        "QUERY_TOO_COSTLY",
        "BAD_USER_INPUT",
    }
)


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


SUGGESTION = re.compile(r" ?Did you mean .*\?")


def without_suggestion(error: GraphQLError) -> GraphQLError:
    """The error without graphql-core's "Did you mean …?" hint (which names schema parts)."""
    message = SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )
