"""The catalog as a Lambda function: recorded API Gateway events answered as the
container answers them over HTTP, its clients made once, and its telemetry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

import obskit
from catalog.main import create_app
from catalog.settings import Settings
from tests.support.function import invoke, over_http, recorded, without

#: In the order a client would send them: the product created is read back last.
SEQUENCE = [
    "get-product",
    "list-products",
    "create-product",
    "create-product-malformed",
    "missing-route",
]


@pytest.fixture
def function(database_url: str, redis_url: str) -> Iterator[obskit.LambdaFunction[Settings]]:
    handler = obskit.LambdaFunction(
        create_app, Settings(database_url=database_url, redis_url=redis_url)
    )
    yield handler
    handler.close()


@pytest.fixture
def container(twin_database_url: str, twin_redis_url: str) -> Iterator[TestClient]:
    """The same service as a container, on a database and Redis of its own."""
    app = create_app(Settings(database_url=twin_database_url, redis_url=twin_redis_url))
    with TestClient(app) as client:
        yield client


def test_recorded_events_answer_as_the_container_does(
    function: obskit.LambdaFunction[Settings], container: TestClient
) -> None:
    """Each recorded event gets the status and body the same request gets over HTTP."""
    for name in SEQUENCE:
        event = recorded("catalog", name)
        # Both databases were seeded at their own start, so timestamps differ.
        as_function = invoke(function, event)
        as_container = over_http(container, event)
        assert without(as_function, "updated_at") == without(as_container, "updated_at"), name
    statuses = [invoke(function, recorded("catalog", name))[0] for name in SEQUENCE]
    assert statuses == [200, 200, 409, 422, 404]


def test_clients_are_made_once_and_reused(function: obskit.LambdaFunction[Settings]) -> None:
    """The lifespan runs once per environment: every invocation uses the same Redis client."""
    redis = function.app.state.redis
    for _ in range(3):
        assert invoke(function, recorded("catalog", "get-product"))[0] == 200
    assert function.app.state.redis is redis
    assert function.invocations == 3


def test_cold_start_is_marked_and_init_is_a_span(database_url: str, redis_url: str) -> None:
    """The first invocation's span says faas.coldstart and links to the init span; the
    second is warm; the app's HTTP span is a child of the invocation's."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    obskit.setup_tracing("catalog").add_span_processor(processor)
    try:
        handler = obskit.LambdaFunction(
            create_app, Settings(database_url=database_url, redis_url=redis_url)
        )
        try:
            invoke(handler, recorded("catalog", "get-product"))
            invoke(handler, recorded("catalog", "get-product"))
        finally:
            handler.close()
    finally:
        processor.shutdown()
    spans = exporter.get_finished_spans()
    (init,) = [s for s in spans if s.name == "function.init"]
    cold, warm = [s for s in spans if s.name == handler.name]
    assert init.parent is None
    assert cold.attributes["faas.coldstart"] is True
    assert [link.context.span_id for link in cold.links] == [init.context.span_id]
    assert warm.attributes["faas.coldstart"] is False
    assert not warm.links
    assert cold.attributes["faas.trigger"] == "http"
    http = [s for s in spans if s.name == "GET /products/{product_id}"]
    assert [s.parent.span_id for s in http if s.parent] == [
        cold.context.span_id,
        warm.context.span_id,
    ]
