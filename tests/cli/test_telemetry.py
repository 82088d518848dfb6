"""The lab's OTLP receiver and store (run as the lab runs them), and the commands reading them."""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from rich.console import Console
from typer.testing import CliRunner

from obslab import cli
from obslab.cli import app
from obslab.native import servers
from obslab.native.process import start_and_wait, stop_group
from obslab.telemetry.store import Store
from tests.support.backends import free_port

PROTOBUF = {"content-type": "application/x-protobuf"}
T0 = 1_700_000_000_000_000_000  # nanoseconds since the epoch: a fixed "now" for built spans
ORDER_TRACE = "0af7651916cd43dd8448eb211c80319c"
ERROR_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


# -- building OTLP messages by hand ---------------------------------------------------


def _kv(**attributes: object) -> list[KeyValue]:
    def value(v: object) -> AnyValue:
        if isinstance(v, bool):
            return AnyValue(bool_value=v)
        if isinstance(v, int):
            return AnyValue(int_value=v)
        return AnyValue(string_value=str(v))

    return [KeyValue(key=k.replace("__", "."), value=value(v)) for k, v in attributes.items()]


def span(
    trace_id: str,
    span_id: int,
    parent: int,
    name: str,
    kind: int,
    start_ms: float,
    end_ms: float,
    error: str = "",
    events: tuple[tuple[float, str], ...] = (),
    **attributes: object,
) -> Span:
    return Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=T0 + int(start_ms * 1e6),
        end_time_unix_nano=T0 + int(end_ms * 1e6),
        status=Status(code=Status.STATUS_CODE_ERROR, message=error) if error else Status(),
        attributes=_kv(**attributes),
        events=[
            Span.Event(time_unix_nano=T0 + int(at_ms * 1e6), name=name, attributes=_kv(attempt=1))
            for at_ms, name in events
        ],
    )


def spans_of(service: str, *spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_kv(service__name=service)),
                scope_spans=[ScopeSpans(spans=list(spans))],
            )
        ]
    )


def logs_of(service: str, trace_id: str, *lines: tuple[float, str]) -> ExportLogsServiceRequest:
    records = [
        LogRecord(
            time_unix_nano=T0 + int(at_ms * 1e6),
            severity_text="INFO",
            body=AnyValue(string_value=event),
            trace_id=bytes.fromhex(trace_id),
            span_id=(1).to_bytes(8, "big"),
            attributes=_kv(service=service, order_id=7),
        )
        for at_ms, event in lines
    ]
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=_kv(service__name=service)),
                scope_logs=[ScopeLogs(log_records=records)],
            )
        ]
    )


SERVER, CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
PRODUCER, CONSUMER = Span.SPAN_KIND_PRODUCER, Span.SPAN_KIND_CONSUMER

#: One checkout as the shop makes it: gateway → orders → inventory, payments; then
#: orders publishes and notifications consumes, a hop through the broker.
CHECKOUT = [
    spans_of(
        "gateway",
        span(ORDER_TRACE, 1, 0, "POST /api/orders", SERVER, 0, 120, http__route="/api/orders"),
        span(ORDER_TRACE, 2, 1, "POST", CLIENT, 5, 115, http__response__status_code=201),
    ),
    spans_of(
        "orders",
        span(ORDER_TRACE, 3, 2, "POST /orders", SERVER, 8, 110, http__route="/orders"),
        span(ORDER_TRACE, 4, 3, "POST", CLIENT, 10, 30),
        # The first try timed out: the kit's retry event, as the waterfall must show it.
        span(ORDER_TRACE, 6, 3, "POST", CLIENT, 32, 90, events=((60, "retry.scheduled"),)),
        span(ORDER_TRACE, 8, 3, "orders.events publish", PRODUCER, 95, 100),
    ),
    spans_of("inventory", span(ORDER_TRACE, 5, 4, "POST /reservations", SERVER, 12, 28)),
    spans_of("payments", span(ORDER_TRACE, 7, 6, "POST /charges", SERVER, 35, 88)),
    spans_of(
        "notifications",
        span(
            ORDER_TRACE,
            9,
            8,
            "orders.events process",
            CONSUMER,
            130,
            140,
            messaging__destination__name="orders.events",
        ),
    ),
]
FAILED_READ = spans_of(
    "catalog",
    span(
        ERROR_TRACE,
        1,
        0,
        "GET /products/{product_id}",
        SERVER,
        1000,
        1003,
        error="boom",
        http__route="/products/{product_id}",
    ),
)
CHECKOUT_LOGS = [
    logs_of("gateway", ORDER_TRACE, (1, "http.request"), (119, "http.request")),
    logs_of("orders", ORDER_TRACE, (9, "order.created"), (100, "order.confirmed")),
    logs_of("inventory", ORDER_TRACE, (20, "stock.reserved")),
    logs_of("payments", ORDER_TRACE, (50, "charge.captured")),
    logs_of("notifications", ORDER_TRACE, (135, "notification.sent")),
]


# -- the receiver, as a real process ----------------------------------------------------


class Receiver:
    def __init__(self, folder: Path, **settings: object) -> None:
        self.database = folder / "telemetry.sqlite3"
        process = servers.telemetry(self.database, free_port())
        process.env.update({f"OBSLAB_TELEMETRY_{k.upper()}": str(v) for k, v in settings.items()})
        self.url = process.url
        self.pid = start_and_wait(process, folder / "telemetry.log").pid

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", content=body, headers=headers or PROTOBUF)

    def store(self) -> Store:
        return Store(self.database, readonly=True)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []
    folder = Path(tempfile.mkdtemp(prefix="obslab-telemetry-"))

    def start(**settings: object) -> Receiver:
        receiver = Receiver(folder, **settings)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        stop_group(receiver.pid)
    shutil.rmtree(folder, ignore_errors=True)


def test_spans_from_the_sdk_exporter_are_stored_with_their_service_and_parent(
    start_receiver: Callable[..., Receiver],
) -> None:
    """Spans sent by the OpenTelemetry SDK's OTLP/HTTP exporter are stored with the
    service that sent them, their parent, kind, status and attributes."""
    receiver = start_receiver()
    provider = TracerProvider(resource=SdkResource.create({"service.name": "orders"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/orders")
        with tracer.start_as_current_span("orders.events publish", kind=SpanKind.PRODUCER) as sent:
            sent.set_status(StatusCode.ERROR, "broker away")
            sent.add_event("retry", {"attempt": 2})
    assert provider.force_flush()
    provider.shutdown()

    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = {s["name"]: s for s in receiver.store().trace(trace_id)}
    assert spans["POST /orders"]["kind"] == "server"
    assert spans["POST /orders"]["parent_span_id"] == ""
    assert spans["POST /orders"]["attributes"] == {"http.route": "/orders"}
    published = spans["orders.events publish"]
    assert published["service"] == "orders" and published["kind"] == "producer"
    assert published["parent_span_id"] == spans["POST /orders"]["span_id"]
    assert published["error"] and published["status_message"] == "broker away"
    assert published["events"][0]["name"] == "retry"
    assert published["events"][0]["attributes"] == {"attempt": 2}


def test_malformed_payloads_get_the_otlp_error_status_and_lose_nothing(
    start_receiver: Callable[..., Receiver],
) -> None:
    """Garbage (400), a bad gzip body (400), JSON (415) and an oversized body (413) are
    refused with a google.rpc.Status body; the receiver keeps running, keeps what it
    stored, and stores the next good export."""
    receiver = start_receiver(max_body_bytes=16_384)
    assert receiver.post("/v1/traces", CHECKOUT[0].SerializeToString()).status_code == 200

    refusals = {
        "garbage spans": (receiver.post("/v1/traces", b"\x00\x01 not protobuf"), 400),
        "garbage logs": (receiver.post("/v1/logs", b"\xff" * 10), 400),
        "bad gzip": (
            receiver.post("/v1/traces", b"not gzip", {**PROTOBUF, "content-encoding": "gzip"}),
            400,
        ),
        "json": (receiver.post("/v1/traces", b"{}", {"content-type": "application/json"}), 415),
        "oversized": (receiver.post("/v1/traces", b"\x0a" * 20_000), 413),
        "gzip bomb": (
            receiver.post(
                "/v1/traces",
                gzip.compress(b"\x00" * 100_000),
                {**PROTOBUF, "content-encoding": "gzip"},
            ),
            413,
        ),
    }
    for what, (response, status) in refusals.items():
        assert response.status_code == status, what
        assert response.headers["content-type"] == "application/x-protobuf", what
        refusal = status_pb2.Status.FromString(response.content)
        assert refusal.code in (code_pb2.INVALID_ARGUMENT, code_pb2.RESOURCE_EXHAUSTED), what
        assert refusal.message, what

    zipped = gzip.compress(CHECKOUT[1].SerializeToString())
    after = receiver.post("/v1/traces", zipped, {**PROTOBUF, "content-encoding": "gzip"})
    assert after.status_code == 200
    assert not ExportTraceServiceResponse.FromString(after.content).HasField("partial_success")
    assert httpx.get(f"{receiver.url}/health/ready").json()["spans"] == 6
    assert {s["service"] for s in receiver.store().trace(ORDER_TRACE)} == {"gateway", "orders"}


def test_spans_with_invalid_ids_are_reported_as_rejected(
    start_receiver: Callable[..., Receiver],
) -> None:
    """A span without a valid trace id is not stored, and the answer's partial_success
    counts it, as OTLP says."""
    receiver = start_receiver()
    export = spans_of("orders", Span(name="no ids"), span(ORDER_TRACE, 1, 0, "ok", SERVER, 0, 1))
    response = receiver.post("/v1/traces", export.SerializeToString())
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert receiver.store().count("spans") == 1


def test_the_store_keeps_the_newest_rows_and_drops_the_oldest(
    start_receiver: Callable[..., Receiver],
) -> None:
    """With max_rows 4, after 9 spans and 9 log lines only the last 4 of each received
    remain."""
    receiver = start_receiver(max_rows=4)
    for n in range(1, 10):
        trace_id = f"{n:032x}"
        spans = spans_of("orders", span(trace_id, 1, 0, f"span {n}", SERVER, n, n + 1))
        logs = logs_of("orders", trace_id, (n, f"line {n}"))
        assert receiver.post("/v1/traces", spans.SerializeToString()).status_code == 200
        assert receiver.post("/v1/logs", logs.SerializeToString()).status_code == 200

    store = receiver.store()
    kept = store.traces(limit=100)
    assert [t["route"] for t in kept] == ["span 9", "span 8", "span 7", "span 6"]
    assert store.count("logs") == 4
    assert store.logs(f"{9:032x}")[0]["body"] == "line 9"
    assert store.logs(f"{5:032x}") == []


# -- the commands, against a store filled with known spans -------------------------


@pytest.fixture
def lab_runtime() -> Iterator[dict[str, str]]:
    """A runtime folder whose store holds one checkout and one failed read."""
    runtime = Path(tempfile.mkdtemp(prefix="obslab-runtime-"))
    store = Store(runtime / "data" / "telemetry.sqlite3")
    for export in [*CHECKOUT, FAILED_READ]:
        store.add_spans(export)
    for export in CHECKOUT_LOGS:
        store.add_logs(export)
    store.close()
    yield {"OBSLAB_LAB_RUNTIME_DIR": str(runtime)}
    shutil.rmtree(runtime, ignore_errors=True)


def obslab(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_traces_lists_recent_traces_and_filters_them(lab_runtime: dict[str, str]) -> None:
    """`obslab traces --json` lists each trace newest first with its root route, services,
    duration and error; --service, --route, --min-ms and --errors filter them."""
    code, output = obslab(lab_runtime, "traces", "--json")
    assert code == 0
    failed, checkout = json.loads(output)
    assert checkout == {
        "trace_id": ORDER_TRACE,
        "route": "/api/orders",
        "root_service": "gateway",
        "services": ["gateway", "inventory", "notifications", "orders", "payments"],
        "spans": 9,
        "start_ns": T0,
        "duration_ms": 140.0,
        "error": False,
    }
    assert (failed["trace_id"], failed["route"], failed["error"]) == (
        ERROR_TRACE,
        "/products/{product_id}",
        True,
    )

    def ids(*filters: str) -> list[str]:
        code, output = obslab(lab_runtime, "traces", "--json", *filters)
        assert code == 0
        return [t["trace_id"] for t in json.loads(output)]

    assert ids("--service", "payments") == [ORDER_TRACE]
    assert ids("--route", "products") == [ERROR_TRACE]
    assert ids("--min-ms", "100") == [ORDER_TRACE]
    assert ids("--errors") == [ERROR_TRACE]
    assert ids("--service", "nobody") == []
    code, output = obslab(lab_runtime, "traces")
    assert code == 0 and ORDER_TRACE in output


def test_trace_shows_the_tree_across_the_broker(
    lab_runtime: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`obslab trace ID --json` gives every span depth first with its depth and offset, the
    consumer under the producer; without --json the waterfall renders, with the broker hop,
    the key attributes and the events (a retry) under their span."""
    code, output = obslab(lab_runtime, "trace", ORDER_TRACE, "--json")
    assert code == 0
    tree = json.loads(output)
    assert tree["duration_ms"] == 140.0
    assert [(s["service"], s["kind"], s["depth"]) for s in tree["spans"]] == [
        ("gateway", "server", 0),
        ("gateway", "client", 1),
        ("orders", "server", 2),
        ("orders", "client", 3),
        ("inventory", "server", 4),
        ("orders", "client", 3),
        ("payments", "server", 4),
        ("orders", "producer", 3),
        ("notifications", "consumer", 4),
    ]
    assert tree["spans"][-1]["offset_ms"] == 130.0

    # A wide console, whatever ran before: after the e2e tests, CliRunner's COLUMNS
    # env no longer reached the CLI's console in the full suite.
    monkeypatch.setattr(cli, "console", Console(width=200))
    code, output = obslab(lab_runtime, "trace", ORDER_TRACE)
    assert code == 0
    assert "→ broker" in output and "← broker" in output and "notifications" in output
    assert "• retry.scheduled" in output, output
    assert "http.route=/orders" in output, output
    code, output = obslab(lab_runtime, "trace", ERROR_TRACE)
    assert code == 0 and "boom" in output
    assert obslab(lab_runtime, "trace", "f" * 32)[0] == 1


def test_logs_of_a_trace_come_from_every_service_in_time_order(
    lab_runtime: dict[str, str],
) -> None:
    """`obslab logs --trace ID --json` lists the trace's log lines of every service in time
    order; the text form renders them; `obslab logs` with neither is an error."""
    code, output = obslab(lab_runtime, "logs", "--trace", ORDER_TRACE, "--json")
    assert code == 0
    lines = json.loads(output)
    assert [(line["service"], line["body"]) for line in lines] == [
        ("gateway", "http.request"),
        ("orders", "order.created"),
        ("inventory", "stock.reserved"),
        ("payments", "charge.captured"),
        ("orders", "order.confirmed"),
        ("gateway", "http.request"),
        ("notifications", "notification.sent"),
    ]
    assert lines[0]["attributes"]["order_id"] == 7

    code, output = obslab(lab_runtime, "logs", "--trace", ORDER_TRACE)
    assert code == 0 and "stock.reserved" in output and "order_id=7" in output
    assert obslab(lab_runtime, "logs")[0] == 2


def test_the_commands_say_when_there_is_no_store(tmp_path: Path) -> None:
    """Without a store (the lab never ran, or ran with --otlp) the commands exit 2."""
    env = {"OBSLAB_LAB_RUNTIME_DIR": str(tmp_path)}
    assert obslab(env, "traces")[0] == 2
    assert obslab(env, "trace", ORDER_TRACE)[0] == 2
    assert obslab(env, "logs", "--trace", ORDER_TRACE)[0] == 2


def test_an_export_sent_twice_is_stored_once(start_receiver: Callable[..., Receiver]) -> None:
    """An exporter retrying a batch the receiver already stored does not duplicate spans."""
    receiver = start_receiver()
    for _ in range(2):
        assert receiver.post("/v1/traces", CHECKOUT[1].SerializeToString()).status_code == 200
    assert receiver.store().count("spans") == 4
