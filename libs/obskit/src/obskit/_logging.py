"""Structured logging with structlog: JSON lines that carry the trace they belong to.

Every line holds ``service``, ``trace_id``, ``span_id`` and, inside a request,
``request_id`` (bound by the middleware through contextvars). Secrets are redacted
by a processor before anything is rendered. Logs from the standard library
(uvicorn, SQLAlchemy, aio-pika) go through the same processors, so there is one
format. When an OTLP endpoint is configured, each line is also sent as an
OpenTelemetry log record (see :mod:`obskit._telemetry`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from obskit._redact import redact

_otel_logger: Any = None  # set by _telemetry when OTLP log export is on


def _add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def _redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {key: redact(value, key) for key, value in event_dict.items()}


#: Fields a log record carries elsewhere (body, time, severity, trace context, the
#: resource's service.name): repeated as attributes, each would be encoded, sent and
#: stored once more for every line.
_NOT_ATTRIBUTES = frozenset({"event", "timestamp", "level", "trace_id", "span_id", "service"})

_SEVERITY = {"debug": 5, "info": 9, "warning": 13, "error": 17, "critical": 21, "exception": 17}


def _export_otlp(_: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    if _otel_logger is not None:
        attributes = {
            k: v if isinstance(v, str | int | float | bool) else str(v)
            for k, v in event_dict.items()
            if k not in _NOT_ATTRIBUTES
        }
        _otel_logger.emit(
            body=str(event_dict.get("event", "")),
            severity_text=event_dict.get("level", method).upper(),
            severity_number=_SEVERITY.get(method, 9),
            attributes=attributes,
        )
    return event_dict


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the standard library for one service process."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())

    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        # Before the fields added below: those are ours (a timestamp, ids in hex), and
        # scanning them for card numbers on every line cost more than the rest.
        _redact_secrets,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        _add_trace_context,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    tail: list[Processor] = [structlog.processors.dict_tracebacks] if json_output else []

    structlog.configure(
        processors=[*shared, *tail, _export_otlp, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        # Not cached, so structlog.testing.capture_logs sees every logger in tests.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, *tail, _export_otlp],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Our middleware writes one canonical line per request; uvicorn's access log would
    # repeat it without the trace id.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("aiormq", "aio_pika", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
