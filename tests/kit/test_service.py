"""What instrument_service gives every app: JSON errors, limits, metrics, logs, health."""

from __future__ import annotations

import json

import pytest
import sqlalchemy.exc
import structlog
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

import obskit
from obskit import _telemetry
from tests.support.apps import serve_in_process


class Item(BaseModel):
    quantity: int = Field(ge=1, le=100)
    card_number: str = ""


def make_app(*, telemetry: bool = True) -> FastAPI:
    settings = obskit.ServiceSettings(
        service_name="kit-test", max_body_bytes=1024, log_format="json", telemetry=telemetry
    )
    app = FastAPI(telemetry=obskit.fastapi_telemetry(settings))
    obskit.instrument_service(app, settings)

    @app.post("/items/{item_id}")
    async def create_item(item_id: int, item: Item) -> dict[str, int]:
        structlog.get_logger("test").info(
            "item.created", card_number=item.card_number, note=item.card_number
        )
        return {"id": item_id, "quantity": item.quantity}

    @app.get("/boom")
    async def read_boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/pool-full")
    async def read_pool_full() -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit reached")

    @app.get("/conflict")
    async def read_conflict() -> None:
        raise obskit.Conflict("Taken.", code="taken")

    return app


async def test_unhandled_error_is_a_json_500_without_internals() -> None:
    """An exception in a handler becomes a 500 with the JSON error body, no traceback."""
    async with serve_in_process(make_app()) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Something went wrong."}
    }
    assert "secret internals" not in response.text


async def test_a_full_database_pool_is_a_503_not_a_500() -> None:
    """Running out of database connections is overload: 503 with Retry-After."""
    async with serve_in_process(make_app()) as client:
        response = await client.get("/pool-full")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"


async def test_service_errors_keep_their_status_and_code() -> None:
    """A ServiceError raised in a handler answers with its own status and code."""
    async with serve_in_process(make_app()) as client:
        response = await client.get("/conflict")
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "taken", "message": "Taken."}


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 422, "validation_error"),
        (b'{"quantity": "many"}', {"content-type": "application/json"}, 422, "validation_error"),
        (b'{"quantity": 0}', {"content-type": "application/json"}, 422, "validation_error"),
        (
            b"quantity=1",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        (
            b'{"quantity": 1, "x": "' + b"a" * 2000 + b'"}',
            {"content-type": "application/json"},
            413,
            "payload_too_large",
        ),
    ],
)
async def test_bad_requests_are_4xx_json(
    content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    """Malformed JSON, wrong types, out-of-range values, other media types and oversize
    bodies are refused with a 4xx and the JSON error body."""
    async with serve_in_process(make_app()) as client:
        response = await client.post("/items/1", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_chunked_oversize_body_is_refused() -> None:
    """A body over the limit is refused even when it arrives without a Content-Length."""

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 200

    async with serve_in_process(make_app()) as client:
        response = await client.post(
            "/items/1", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413


async def test_validation_errors_do_not_echo_the_input() -> None:
    """A refused field's value (maybe a card number) is not sent back in the error."""
    async with serve_in_process(make_app()) as client:
        response = await client.post("/items/1", json={"quantity": "4242424242424242"})
    assert response.status_code == 422
    assert "4242424242424242" not in response.text


async def test_request_is_measured_by_route_template_with_exemplar() -> None:
    """The duration histogram is labelled by the route template, not the raw path."""
    labels = {
        "http_request_method": "POST",
        "http_route": "/items/{item_id}",
        "http_response_status_code": "200",
    }
    before = REGISTRY.get_sample_value("http_server_request_duration_seconds_count", labels) or 0
    async with serve_in_process(make_app()) as client:
        response = await client.post("/items/77", json={"quantity": 2})
        metrics = await client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert response.status_code == 200
    after = REGISTRY.get_sample_value("http_server_request_duration_seconds_count", labels)
    assert after == before + 1
    assert "/items/77" not in metrics.text
    trace_id = response.headers["x-trace-id"]
    assert f'# {{trace_id="{trace_id}"}}' in metrics.text


async def test_one_canonical_log_line_per_request_with_trace_and_no_card(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each request logs one ``http.request`` line with its ids; card numbers are redacted."""
    async with serve_in_process(make_app()) as client:
        response = await client.post(
            "/items/5",
            json={"quantity": 1, "card_number": "4242424242424242"},
            headers={"x-request-id": "req-123"},
        )
    output = capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["event"] == "http.request"]
    assert len(requests) == 1
    assert requests[0]["request_id"] == "req-123"
    assert requests[0]["trace_id"] == response.headers["x-trace-id"]
    assert requests[0]["http_route"] == "/items/{item_id}"
    assert response.headers["x-request-id"] == "req-123"
    assert "4242424242424242" not in output
    created = next(line for line in lines if line["event"] == "item.created")
    assert created["service"] == "kit-test" and created["span_id"]


async def test_readiness_reports_each_check() -> None:
    """Ready is 503 naming the failing check while live stays 200."""
    app = make_app()

    async def broken() -> None:
        raise ConnectionError

    async def fine() -> None:
        return None

    app.state.readiness.add("database", fine)
    app.state.readiness.add("redis", broken)
    async with serve_in_process(app) as client:
        ready = await client.get("/health/ready")
        live = await client.get("/health/live")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "error: ConnectionError"},
    }
    assert live.status_code == 200


async def test_a_failing_optional_check_leaves_the_service_ready_but_degraded() -> None:
    """A non-critical check (a cache) that fails makes ready say degraded, still 200; a
    critical one failing beside it still makes it 503."""
    app = make_app()

    async def broken() -> None:
        raise ConnectionError

    async def fine() -> None:
        return None

    app.state.readiness.add("database", fine)
    app.state.readiness.add("cache", broken, critical=False)
    async with serve_in_process(app) as client:
        degraded = await client.get("/health/ready")
        app.state.readiness.add("database", broken)
        unavailable = await client.get("/health/ready")
    assert (degraded.status_code, degraded.json()["status"]) == (200, "degraded")
    assert degraded.json()["checks"] == {"database": "ok", "cache": "error: ConnectionError"}
    assert (unavailable.status_code, unavailable.json()["status"]) == (503, "unavailable")


async def test_with_telemetry_off_a_request_leaves_no_span_metric_or_log_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """OBSLAB_TELEMETRY=false: no span, no duration sample, no ``http.request`` line,
    while JSON errors and /metrics still work."""
    spans = InMemorySpanExporter()
    obskit.setup_tracing("kit-test").add_span_processor(SimpleSpanProcessor(spans))
    labels = {
        "http_request_method": "POST",
        "http_route": "/items/{item_id}",
        "http_response_status_code": "200",
    }
    before = REGISTRY.get_sample_value("http_server_request_duration_seconds_count", labels)
    try:
        async with serve_in_process(make_app(telemetry=False)) as client:
            created = await client.post("/items/3", json={"quantity": 1})
            refused = await client.post("/items/3", json={"quantity": 0})
            metrics = await client.get("/metrics")
    finally:
        _telemetry.enabled = True  # the next app in this process is built with it on
        spans.shutdown()  # the provider is the process's: stop collecting into this one
    assert created.status_code == 200 and "x-trace-id" not in created.headers
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_error"
    assert metrics.status_code == 200
    assert spans.get_finished_spans() == ()
    after = REGISTRY.get_sample_value("http_server_request_duration_seconds_count", labels)
    assert after == before
    assert '"http.request"' not in capsys.readouterr().out


async def test_a_request_is_one_server_span_named_by_its_route_and_polls_are_untraced() -> None:
    """Each request is one server span, ``POST /items/{item_id}``, continuing the caller's
    trace (and no span per dependency); health and metrics polls make no span."""
    spans = InMemorySpanExporter()
    obskit.setup_tracing("kit-test").add_span_processor(SimpleSpanProcessor(spans))
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    traceparent = f"00-{caller_trace}-b7ad6b7169203331-01"
    try:
        async with serve_in_process(make_app()) as client:
            created = await client.post(
                "/items/3", json={"quantity": 1}, headers={"traceparent": traceparent}
            )
            for path in ("/health/live", "/health/ready", "/metrics"):
                assert (await client.get(path)).status_code == 200
    finally:
        spans.shutdown()  # the provider is the process's: stop collecting into this one
    assert created.headers["x-trace-id"] == caller_trace
    [span] = spans.get_finished_spans()
    assert span.name == "POST /items/{item_id}"
    assert span.context is not None and format(span.context.trace_id, "032x") == caller_trace
    assert span.attributes is not None and span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
