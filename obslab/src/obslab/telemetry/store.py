"""The lab's trace, log and alert store: one SQLite file, bounded, written by the receiver.

The receiver writes each OTLP export in one transaction (the services' exporters
already batch: one export carries up to 512 spans), in WAL mode so that
``obslab traces`` reads while it writes. Each table keeps at most ``max_rows``
rows: the oldest received are dropped first, so a lab left running for days
stays a few tens of megabytes.

Ids are lowercase hex, as in ``X-Trace-Id`` and the services' log lines; times
are nanoseconds since the epoch, as OTLP sends them. Alerts keep Alertmanager's
own fields (RFC 3339 times), one row per alert per firing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,  -- arrival order: the smallest ids are dropped first
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT NOT NULL,  -- '' for a root span
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,  -- server, client, producer, consumer, internal
    route TEXT NOT NULL,  -- http.route, '' when the span is not an HTTP server span
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    error INTEGER NOT NULL,
    status_message TEXT NOT NULL,
    attributes TEXT NOT NULL,  -- JSON object
    events TEXT NOT NULL  -- JSON list of {name, time_ns, attributes}
);
-- Unique: an exporter that timed out sends the same batch again; keep one copy.
CREATE UNIQUE INDEX IF NOT EXISTS spans_by_trace ON spans (trace_id, span_id);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    service TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    severity TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_trace ON logs (trace_id);
-- What Alertmanager's webhook delivered (`obslab alerts`): one row per alert per
-- firing. Alertmanager sends the same alert again (repeats, then resolved) with the
-- same fingerprint and startsAt, which update the row; the same alert firing again
-- later has a new startsAt, so a new row. Alertmanager holds one alert per
-- fingerprint, and tells a receiver only what changed in a group's set of firing
-- fingerprints: an alert that resolves and fires again within group_interval
-- replaces the first without a word, and its resolution, later, has the new
-- startsAt. So any delivery of a fingerprint ends that fingerprint's earlier rows
-- still firing (resolved, ends_at = the new startsAt).
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,  -- Alertmanager's hash of the alert's labels
    starts_at TEXT NOT NULL,  -- RFC 3339, as Alertmanager sends it
    ends_at TEXT NOT NULL,  -- when it resolved; Go's zero time while it fires
    status TEXT NOT NULL,  -- firing, resolved
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL,
    service TEXT NOT NULL,
    receiver TEXT NOT NULL,  -- the route's receiver: page, ticket, info
    summary TEXT NOT NULL,
    runbook_url TEXT NOT NULL,
    labels TEXT NOT NULL,  -- JSON object
    annotations TEXT NOT NULL,  -- JSON object
    received_ns INTEGER NOT NULL,  -- the last delivery about it
    UNIQUE (fingerprint, starts_at)
);
"""

KINDS = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}


def _value(value: AnyValue) -> Any:
    """An OTLP attribute value as plain JSON."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind) if kind else None


def _attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


def _service(resource_attributes: Iterable[KeyValue]) -> str:
    return str(_attributes(resource_attributes).get("service.name", "unknown"))


def _valid_ids(trace_id: bytes, span_id: bytes) -> bool:
    return len(trace_id) == 16 and any(trace_id) and len(span_id) == 8 and any(span_id)


class Store:
    """The SQLite file of spans and log records; safe to share between threads."""

    def __init__(self, path: Path, max_rows: int = 100_000, *, readonly: bool = False) -> None:
        self.max_rows = max_rows
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            # WAL: readers never wait for the writer; NORMAL: no fsync per export
            # (a lost last second of telemetry after a power cut is fine in a lab).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    # -- writing: one OTLP export, one transaction -------------------------------------

    def add_spans(self, request: ExportTraceServiceRequest) -> tuple[int, int]:
        """Store the spans of one export; return (stored, rejected for invalid ids)."""
        rows, rejected = [], 0
        for resource_spans in request.resource_spans:
            service = _service(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if not _valid_ids(span.trace_id, span.span_id):
                        rejected += 1
                        continue
                    attributes = _attributes(span.attributes)
                    events = [
                        {
                            "name": event.name,
                            "time_ns": event.time_unix_nano,
                            "attributes": _attributes(event.attributes),
                        }
                        for event in span.events
                    ]
                    rows.append(
                        (
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            service,
                            span.name,
                            KINDS.get(span.kind, "internal"),
                            str(attributes.get("http.route", "")),
                            span.start_time_unix_nano,
                            max(span.end_time_unix_nano, span.start_time_unix_nano),
                            int(span.status.code == Status.STATUS_CODE_ERROR),
                            span.status.message,
                            json.dumps(attributes),
                            json.dumps(events),
                        )
                    )
        self._insert(
            "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_span_id, service, name, kind,"
            " route, start_ns, end_ns, error, status_message, attributes, events)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            "spans",
            rows,
        )
        return len(rows), rejected

    def add_logs(self, request: ExportLogsServiceRequest) -> int:
        """Store the log records of one export; return how many."""
        rows = []
        for resource_logs in request.resource_logs:
            service = _service(resource_logs.resource.attributes)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    body = _value(record.body)
                    rows.append(
                        (
                            record.trace_id.hex(),
                            record.span_id.hex(),
                            service,
                            record.time_unix_nano or record.observed_time_unix_nano,
                            record.severity_text,
                            body if isinstance(body, str) else json.dumps(body),
                            json.dumps(_attributes(record.attributes)),
                        )
                    )
        self._insert(
            "INSERT INTO logs (trace_id, span_id, service, time_ns, severity, body, attributes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            "logs",
            rows,
        )
        return len(rows)

    def _insert(
        self,
        sql: str,
        table: str,
        rows: list[tuple[Any, ...]],
        then: tuple[str, list[tuple[Any, ...]]] | None = None,
    ) -> None:
        """Insert ``rows`` with ``sql``, then run ``then`` (a statement and its rows)."""
        if not rows:
            return
        with self._lock, self._db:  # one transaction: all of the export or none of it
            self._db.executemany(sql, rows)
            if then is not None:
                self._db.executemany(*then)
            # Ids grow with arrival, so the oldest rows are those below newest - max_rows.
            self._db.execute(
                f"DELETE FROM {table} WHERE id <= (SELECT max(id) FROM {table}) - ?",
                (self.max_rows,),
            )

    def add_alerts(self, alerts: list[dict[str, Any]], receiver: str, received_ns: int) -> int:
        """Store the alerts of one Alertmanager notification (its ``alerts`` list, each
        with status, labels, annotations, startsAt, endsAt, fingerprint); return how many."""
        rows = [
            (
                alert["fingerprint"],
                alert["startsAt"],
                alert["endsAt"],
                alert["status"],
                alert["labels"].get("alertname", ""),
                alert["labels"].get("severity", ""),
                alert["labels"].get("service", ""),
                receiver,
                alert["annotations"].get("summary", ""),
                alert["annotations"].get("runbook_url", ""),
                json.dumps(alert["labels"], sort_keys=True),
                json.dumps(alert["annotations"], sort_keys=True),
                received_ns,
            )
            for alert in alerts
        ]
        self._insert(
            "INSERT INTO alerts (fingerprint, starts_at, ends_at, status, alertname, severity,"
            " service, receiver, summary, runbook_url, labels, annotations, received_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (fingerprint, starts_at) DO UPDATE SET ends_at = excluded.ends_at,"
            " status = excluded.status, receiver = excluded.receiver,"
            " summary = excluded.summary, runbook_url = excluded.runbook_url,"
            " annotations = excluded.annotations, received_ns = excluded.received_ns",
            "alerts",
            rows,
            # A delivery ends the earlier firing rows (lower ids) of its fingerprint.
            then=(
                "UPDATE alerts SET status = 'resolved', ends_at = ?2"
                " WHERE fingerprint = ?1 AND status = 'firing'"
                " AND id < (SELECT id FROM alerts WHERE fingerprint = ?1 AND starts_at = ?2)",
                [(row[0], row[1]) for row in rows],
            ),
        )
        return len(rows)

    # -- reading: what `obslab traces`, `trace`, `logs --trace` and `alerts` show ------

    def count(self, table: str) -> int:
        if table not in ("spans", "logs", "alerts"):  # it is put into the SQL below
            raise ValueError(f"no table {table!r}: spans, logs or alerts")
        with self._lock:
            return int(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def traces(
        self,
        *,
        service: str = "",
        route: str = "",
        min_ms: float = 0,
        errors: bool = False,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """The most recent traces, newest first, one summary each.

        A trace's route is its root span's ``http.route`` (or name); ``service``
        keeps traces that touched that service anywhere.
        """
        sql = """
            WITH summary AS (
                SELECT trace_id, min(start_ns) AS start_ns, max(end_ns) AS end_ns,
                       count(*) AS spans, group_concat(DISTINCT service) AS services,
                       max(error) AS error, sum(service = :service) AS matching
                FROM spans GROUP BY trace_id
            ), roots AS (
                SELECT trace_id, min(id) AS id FROM spans WHERE parent_span_id = ''
                GROUP BY trace_id
            )
            SELECT summary.*, root.service AS root_service,
                   coalesce(nullif(root.route, ''), root.name, '?') AS route
            FROM summary
            LEFT JOIN roots USING (trace_id)
            LEFT JOIN spans AS root ON root.id = roots.id
            WHERE (:service = '' OR matching > 0)
              AND (:route = '' OR coalesce(nullif(root.route, ''), root.name) LIKE :like)
              AND (summary.end_ns - summary.start_ns) >= :min_ns
              AND (NOT :errors OR summary.error)
            ORDER BY summary.start_ns DESC
            LIMIT :limit
        """
        params = {
            "service": service,
            "route": route,
            "like": f"%{route}%",
            "min_ns": int(min_ms * 1e6),
            "errors": errors,
            "limit": limit,
        }
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [
            {
                "trace_id": row["trace_id"],
                "route": row["route"],
                "root_service": row["root_service"],
                "services": sorted(row["services"].split(",")),
                "spans": row["spans"],
                "start_ns": row["start_ns"],
                "duration_ms": round((row["end_ns"] - row["start_ns"]) / 1e6, 3),
                "error": bool(row["error"]),
            }
            for row in rows
        ]

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every span of one trace, in start order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns, id",
                (trace_id.lower(),),
            ).fetchall()
        return [
            {
                "trace_id": row["trace_id"],
                "span_id": row["span_id"],
                "parent_span_id": row["parent_span_id"],
                "service": row["service"],
                "name": row["name"],
                "kind": row["kind"],
                "start_ns": row["start_ns"],
                "end_ns": row["end_ns"],
                "duration_ms": round((row["end_ns"] - row["start_ns"]) / 1e6, 3),
                "error": bool(row["error"]),
                "status_message": row["status_message"],
                "attributes": json.loads(row["attributes"]),
                "events": json.loads(row["events"]),
            }
            for row in rows
        ]

    def logs(self, trace_id: str) -> list[dict[str, Any]]:
        """Every log record of one trace, from every service, in time order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM logs WHERE trace_id = ? ORDER BY time_ns, id", (trace_id.lower(),)
            ).fetchall()
        return [
            {
                "time_ns": row["time_ns"],
                "service": row["service"],
                "severity": row["severity"],
                "body": row["body"],
                "span_id": row["span_id"],
                "attributes": json.loads(row["attributes"]),
            }
            for row in rows
        ]

    def alerts(self, *, firing: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        """The alerts delivered, most recently started first (only those still firing
        with ``firing``)."""
        sql = "SELECT * FROM alerts WHERE (NOT :firing OR status = 'firing')"
        sql += " ORDER BY starts_at DESC, id DESC LIMIT :limit"
        with self._lock:
            try:
                rows = self._db.execute(sql, {"firing": firing, "limit": limit}).fetchall()
            except sqlite3.OperationalError:  # a store written before alerts were kept
                return []
        return [
            {
                "alertname": row["alertname"],
                "status": row["status"],
                "severity": row["severity"],
                "service": row["service"],
                "summary": row["summary"],
                "runbook_url": row["runbook_url"],
                "receiver": row["receiver"],
                "starts_at": row["starts_at"],
                # Go's zero time, or a time in the future (the alert's timeout), while firing.
                "ends_at": row["ends_at"] if row["status"] == "resolved" else None,
                "labels": json.loads(row["labels"]),
                "annotations": json.loads(row["annotations"]),
            }
            for row in rows
        ]
