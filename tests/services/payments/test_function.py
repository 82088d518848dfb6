"""Payments as a Lambda function: recorded API Gateway events answered as the container
answers them over HTTP, and every span exported before the handler returns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.testclient import TestClient

import obskit
from payments.main import create_app
from payments.settings import Settings
from tests.support.function import invoke, over_http, recorded, without
from tests.support.otlp import OTLPReceiver

#: The charge is made, then read back; a repeat of the charge is answered from the store.
SEQUENCE = ["create-charge", "read-charge", "create-charge-malformed", "missing-route"]


def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, bank_latency_ms=1, random_seed=7)


@pytest.fixture
def function(database_url: str) -> Iterator[obskit.LambdaFunction[Settings]]:
    handler = obskit.LambdaFunction(create_app, settings(database_url))
    yield handler
    handler.close()


@pytest.fixture
def container(twin_database_url: str) -> Iterator[TestClient]:
    """The same service as a container, on a database of its own."""
    with TestClient(create_app(settings(twin_database_url))) as client:
        yield client


def test_recorded_events_answer_as_the_container_does(
    function: obskit.LambdaFunction[Settings], container: TestClient
) -> None:
    """Each recorded event gets the status and body the same request gets over HTTP."""
    for name in SEQUENCE:
        event = recorded("payments", name)
        # A charge's id is new in each database; all else must match.
        as_function, as_container = invoke(function, event), over_http(container, event)
        assert without(as_function, "charge_id") == without(as_container, "charge_id"), name
    statuses = [invoke(function, recorded("payments", name))[0] for name in SEQUENCE]
    assert statuses == [200, 200, 422, 404]


def test_spans_are_exported_before_the_handler_returns(database_url: str) -> None:
    """With a batch processor that would wait ten minutes, the invocation's spans have
    reached the collector by the time the handler returns: nothing waits for a thaw."""
    receiver = OTLPReceiver()
    exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=600_000)
    obskit.setup_tracing("payments").add_span_processor(processor)
    handler = obskit.LambdaFunction(create_app, settings(database_url))
    try:
        status, body = invoke(handler, recorded("payments", "create-charge"))
        # No polling: the export was synchronous, inside the invocation.
        names = {span.name for span in receiver.spans}
    finally:
        handler.close()
        processor.shutdown()
        receiver.close()
    assert status == 201, body
    assert {"function.init", handler.name, "POST /charges", "bank.authorize"} <= names
