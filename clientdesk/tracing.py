"""OpenTelemetry tracing: off unless CLIENTDESK_TRACING names an exporter.

The exporter's own variables apply (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES); spans leave in batches, off the request path.
"""

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from clientdesk.settings import Settings


def tracer_provider(settings: Settings) -> TracerProvider | None:
    """The provider the settings ask for, or None when tracing is off."""
    if settings.tracing == "off":
        return None
    exporter: SpanExporter
    if settings.tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    named = "OTEL_SERVICE_NAME" in os.environ
    provider = TracerProvider(
        resource=Resource.create({} if named else {"service.name": "clientdesk"})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
