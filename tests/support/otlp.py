"""An OTLP/HTTP receiver inside the test process, so tests can read what services export.

Why not PyPI ``oteltap``: it hands spans over without their resource, so the
service a span came from (``service.name``) is lost, and that is what our trace
tests assert on. This one decodes the standard protobuf messages from
``opentelemetry-proto`` and keeps the service with every span and log record.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return (
        getattr(value, kind)
        if kind in ("string_value", "bool_value", "int_value", "double_value")
        else str(value)
    )


def _attributes(items: list[KeyValue]) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


@dataclass
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    links: list[str] = field(default_factory=list)  # trace ids of linked spans


@dataclass
class LogRecord:
    service: str
    trace_id: str
    span_id: str
    body: str
    attributes: dict[str, Any]


class OTLPReceiver:
    """Receives ``/v1/traces``, ``/v1/logs`` and ``/v1/metrics`` on a free local port
    until closed (of metrics, it keeps each one's service and name)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.logs: list[LogRecord] = []
        self.metrics: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    receiver._add_spans(body)
                    reply = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/logs":
                    receiver._add_logs(body)
                    reply = ExportLogsServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver._add_metrics(body)
                    reply = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _add_spans(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with self._lock:
                        self.spans.append(
                            Span(
                                service=service,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                name=span.name,
                                kind=span.kind,
                                attributes=_attributes(span.attributes),
                                links=[link.trace_id.hex() for link in span.links],
                            )
                        )

    def _add_logs(self, body: bytes) -> None:
        request = ExportLogsServiceRequest.FromString(body)
        for resource_logs in request.resource_logs:
            service = _attributes(resource_logs.resource.attributes).get("service.name", "")
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    with self._lock:
                        self.logs.append(
                            LogRecord(
                                service=service,
                                trace_id=record.trace_id.hex(),
                                span_id=record.span_id.hex(),
                                body=str(_value(record.body)),
                                attributes=_attributes(record.attributes),
                            )
                        )

    def _add_metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in request.resource_metrics:
            service = _attributes(resource_metrics.resource.attributes).get("service.name", "")
            for scope_metrics in resource_metrics.scope_metrics:
                with self._lock:
                    self.metrics.extend((service, m.name) for m in scope_metrics.metrics)

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def logs_of(self, trace_id: str) -> list[LogRecord]:
        with self._lock:
            return [record for record in self.logs if record.trace_id == trace_id]

    def wait_for_trace(self, trace_id: str, services: set[str], timeout: float) -> list[Span]:
        """Poll until spans of every one of ``services`` arrived in the trace."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.trace(trace_id)
            if services <= {span.service for span in spans} or time.monotonic() > deadline:
                return spans
            time.sleep(0.1)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
