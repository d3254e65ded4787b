"""What a GraphQL request tells the operator: its operation's name and error codes (for the
request's log line and the metrics) and, when tracing is on, OpenTelemetry spans."""

from collections.abc import Generator, Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from strawberry.extensions import LifecycleStep, SchemaExtension
from strawberry.extensions.tracing import OpenTelemetryExtension

from clientdesk.metrics import GRAPHQL_NAME


class Observed(SchemaExtension):
    """Notes the operation's name and its errors' codes on the context (listed before
    ErrorMasking, so it sees the codes that masking gave)."""

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        context = execution.context
        context.operation_name = execution.operation_name
        result = execution.result
        if result is not None and result.errors:
            context.error_codes = tuple(
                str((error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR"))
                for error in result.errors
            )


def _no_arguments(arguments: dict[str, Any], info: Any) -> dict[str, Any]:
    return {}


class Tracing(OpenTelemetryExtension):
    """Strawberry's spans (the operation, parsing, validation, each resolver) without what the
    caller sent: no query text (it may hold a password written inline) and no arguments."""

    def __init__(
        self,
        *,
        execution_context: Any = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        super().__init__(
            execution_context=execution_context,
            arg_filter=_no_arguments,
            tracer_provider=tracer_provider,
        )

    def on_operation(self) -> Generator[None, None, None]:
        span = self._tracer.start_span("GraphQL Query", kind=SpanKind.INTERNAL)
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:  # a request refused before execution ends its span too
            name = self.execution_context.operation_name
            if name and GRAPHQL_NAME.fullmatch(name):  # what callers send is any text
                span.set_attribute("graphql.operation.name", name)
                span.update_name(f"GraphQL Query: {name}")
            span.end()
