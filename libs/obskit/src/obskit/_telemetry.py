"""OpenTelemetry set-up: one tracer provider per process, exporting only when told to.

Export is configured through the standard ``OTEL_*`` variables and nothing else:

=====================================  ==============================================
``OTEL_EXPORTER_OTLP_ENDPOINT``         e.g. ``http://127.0.0.1:4318``: traces and logs
                                        are sent there (OTLP over HTTP/protobuf)
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``  the same, for traces alone
``OTEL_TRACES_EXPORTER=none``           keep traces in-process even with an endpoint
``OTEL_LOGS_EXPORTER=none``             the same for logs
``OTEL_TRACES_SAMPLER``                 read by the SDK (default: parent-based, always on)
``OTEL_SERVICE_NAME``                   overrides the service's own name
``OTEL_BLRP_SCHEDULE_DELAY``            ms between log exports: 5000 here (the SDK's
                                        default is 1000), as for spans
=====================================  ==============================================

With no endpoint, spans are still created (logs and exemplars need their ids) but
nothing is exported, so nothing retries against a collector that is not there.

``OBSLAB_TELEMETRY=false`` turns all of it off, to measure what it costs: then
:data:`enabled` is false, no tracer provider is installed, and the HTTP, database,
Redis and broker clients are not instrumented.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from obskit import _logging

# The stable HTTP semantic conventions (http.request.method, http.route, ...). The
# instrumentations read this once, when they are first used.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
# Logs are sent every 5 s, as spans are, rather than every second: a trace and its log
# lines reach the collector together, and each export (an HTTP POST, ~1 ms of CPU)
# carries five times the records. Read when the log processor is created.
os.environ.setdefault("OTEL_BLRP_SCHEDULE_DELAY", "5000")

#: Whether this process records telemetry. ``instrument_service`` sets it from the
#: service's settings before the lifespan creates its clients, which read it.
enabled = True

_provider: TracerProvider | None = None
_logger_provider = None


def _endpoint_for(signal: str) -> str | None:
    if os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower() == "none":
        return None
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or None
    )


def setup_tracing(service_name: str) -> TracerProvider:
    """Install the process's tracer provider (once) and return it.

    Services call this from ``create_app``; a second call in the same process (tests
    build several apps) returns the provider the first call made.
    """
    global _provider, _logger_provider
    if _provider is not None:
        return _provider
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    _provider = TracerProvider(resource=resource)
    if _endpoint_for("traces"):
        from obskit._export import DeferredSpanExporter

        _provider.add_span_processor(BatchSpanProcessor(DeferredSpanExporter()))
    trace.set_tracer_provider(_provider)

    if _endpoint_for("logs"):
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        from obskit._export import DeferredLogExporter

        _logger_provider = LoggerProvider(resource=resource)
        _logger_provider.add_log_record_processor(BatchLogRecordProcessor(DeferredLogExporter()))
        set_logger_provider(_logger_provider)
        _logging._otel_logger = _logger_provider.get_logger("obskit")
    return _provider


def flush_telemetry(timeout_ms: int = 5000) -> None:
    """Send every span and log record still buffered; called on shutdown."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)
    if _logger_provider is not None:
        _logger_provider.force_flush(timeout_ms)


def current_trace_id() -> str | None:
    """Return the current trace id as 32 hex digits, or None outside a sampled span."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return format(context.trace_id, "032x")
    return None
