"""The OTLP exporters, created by their first export rather than at start.

Their imports (requests, protobuf, the OTLP encoders) take ~40 ms, a twentieth of a
service's start, and ~7 MiB. Created by the first export, in the batch processor's
thread, they are paid a few seconds after the service is ready instead of before.
Until then there is nothing of theirs to flush or shut down.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class DeferredSpanExporter(SpanExporter):
    """OTLP/HTTP spans, configured by the ``OTEL_*`` variables when first used."""

    def __init__(self) -> None:
        self._exporter: SpanExporter | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._exporter is None:  # the batch processor never exports two batches at once
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self._exporter = OTLPSpanExporter()
        return self._exporter.export(spans)

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()


class DeferredLogExporter(LogRecordExporter):
    """OTLP/HTTP log records, configured by the ``OTEL_*`` variables when first used."""

    def __init__(self) -> None:
        self._exporter: LogRecordExporter | None = None

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._exporter is None:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            self._exporter = OTLPLogExporter()
        return self._exporter.export(batch)

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()  # type: ignore[no-untyped-call]  # unannotated in the SDK

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # the batch processor holds the records, not the exporter
