"""The notifications worker against real RabbitMQ and PostgreSQL.

Orders is played by a small recording app served on a real port, which can be told
to fail: these tests pin the worker's own behaviour (retries, dead letters,
idempotency, trace continuity, broker outages). The real orders → broker →
notifications → orders chain is covered by the end-to-end test.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from pydantic import SecretStr
from structlog.typing import EventDict, WrappedLogger

import contracts
import obskit
from notifications.main import create_app
from notifications.settings import Settings
from obskit._chaos import process as chaos_process
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.backends import Backends, free_port

QUEUE = "notifications.order-events"
DEAD_LETTER_QUEUE = "notifications.order-events.dlq"


class FakeOrders:
    """Stands in for orders: records ``POST /orders/{id}/notified``, fails when told to."""

    def __init__(self) -> None:
        self.notified: list[uuid.UUID] = []
        self.failures = 0  # answer 503 to this many calls before succeeding
        self.missing = False  # answer 404: the order does not exist
        self.url = ""
        self.app = FastAPI()
        self.app.post("/orders/{order_id}/notified")(self.mark_order_notified)

    async def mark_order_notified(self, order_id: uuid.UUID) -> JSONResponse:
        self.notified.append(order_id)
        if self.failures > 0:
            self.failures -= 1
            return error(503, "unavailable")
        if self.missing:
            return error(404, "order_not_found")
        return JSONResponse({"id": str(order_id), "notified_at": datetime.now(UTC).isoformat()})


def error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": code}}, status_code=status)


def order_placed(email: str | None = "alice@example.com") -> contracts.OrderPlaced:
    return contracts.OrderPlaced(
        event_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        total_cents=2500,
        email=email,
    )


async def publish(
    amqp_url: str, body: bytes, routing_key: str, headers: dict[str, str] | None = None
) -> None:
    """Publish as orders does: persistent, to the events exchange, confirmed by the broker."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        events, _ = await obskit.declare_exchanges(channel)
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers or {},
        )
        # mandatory (the default): a message no queue is bound for fails here, not silently.
        await events.publish(message, routing_key=routing_key)


async def publish_event(
    amqp_url: str, event: contracts.OrderPlaced | contracts.OrderFailed
) -> None:
    await publish(amqp_url, event.model_dump_json().encode(), event.type)


async def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in ``queue`` (delivered but unacknowledged ones are not counted)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.get_queue(queue)  # passive: the worker declared it
        return int(declared.declaration_result.message_count or 0)


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, within_s: float = 20.0
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``within_s`` seconds."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not after {within_s:.0f}s")
        await asyncio.sleep(0.05)


def count(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def consumed(outcome: str, event_type: str = "order.placed") -> float:
    return count("obslab_events_consumed_total", event_type=event_type, outcome=outcome)


def dead_lettered(reason: str, event_type: str = "order.placed") -> float:
    return count("obslab_events_dead_lettered_total", event_type=event_type, reason=reason)


async def is_ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/health/ready")).status_code == 200


async def notifications_of(client: httpx.AsyncClient, order_id: uuid.UUID) -> list[dict]:
    response = await client.get("/notifications", params={"order_id": str(order_id)})
    assert response.status_code == 200
    return list(response.json())


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the worker until it consumes (its queues are declared), then yield its client."""
    async with serve_in_process(app) as client:
        await wait_until(lambda: is_ready(client), "worker ready")
        yield client


@pytest.fixture
async def orders() -> AsyncIterator[FakeOrders]:
    fake = FakeOrders()
    async with serve_on_port(fake.app) as url:
        fake.url = url
        yield fake


@pytest.fixture
def settings(database_url: str, amqp_url: str, orders: FakeOrders) -> Settings:
    return Settings(
        database_url=database_url,
        amqp_url=amqp_url,
        orders_url=orders.url,
        max_attempts=3,
        # Tiny delays: the tests go through real backoff without waiting for it.
        retry_initial_delay_s=0.01,
        retry_max_delay_s=0.05,
        send_latency_ms=1,
    )


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as client:
        yield client


async def test_order_placed_is_sent_and_the_order_marked_notified(
    worker: httpx.AsyncClient, amqp_url: str, orders: FakeOrders
) -> None:
    """An order.placed event yields one email, recorded, and one notified call to orders."""
    sent = consumed("sent")
    event = order_placed()
    with structlog.testing.capture_logs() as logs:
        await publish_event(amqp_url, event)
        await wait_until(lambda: consumed("sent") == sent + 1, "event handled")

    assert orders.notified == [event.order_id]
    [notification] = await notifications_of(worker, event.order_id)
    assert notification["event_id"] == str(event.event_id)
    assert notification["event_type"] == "order.placed"
    assert notification["channel"] == "email"
    assert notification["recipient"] == "alice@example.com"
    [line] = [entry for entry in logs if entry["event"] == "notification.sent"]
    assert line["recipient"] == "a***@example.com"
    assert "alice@example.com" not in repr(logs)


async def test_order_failed_event_is_notified_too(
    worker: httpx.AsyncClient, amqp_url: str, orders: FakeOrders
) -> None:
    """An order.failed event is an email too (the order could not be completed)."""
    sent = consumed("sent", "order.failed")
    event = contracts.OrderFailed(
        event_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        total_cents=900,
        email="bob@example.com",
        reason="out_of_stock",
    )
    await publish_event(amqp_url, event)
    await wait_until(lambda: consumed("sent", "order.failed") == sent + 1, "event handled")
    assert orders.notified == [event.order_id]
    assert [n["event_type"] for n in await notifications_of(worker, event.order_id)] == [
        "order.failed"
    ]


async def test_a_worker_fault_limited_to_an_event_type_hits_only_its_messages(
    settings: Settings,
    orders: FakeOrders,
    redis_url: str,
    amqp_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """worker_crash on order.failed (injected through the worker's admin API): an
    order.placed is handled without a crash, an order.failed crashes the worker (a
    recorder here: exiting would end the test run)."""
    crashes: list[str] = []
    monkeypatch.setattr(chaos_process, "crash", lambda: crashes.append("crash"))
    token = "test-admin-token-0123456789"
    chaotic = settings.model_copy(
        update={"admin_token": SecretStr(token), "redis_url": redis_url, "chaos_refresh_s": 0.1}
    )
    async with running(create_app(chaotic)) as client:
        injected = await client.post(
            "/admin/chaos/faults",
            json={"kind": "worker_crash", "route": "order.failed", "duration_s": 60},
            headers={"authorization": f"Bearer {token}"},
        )
        assert injected.status_code == 201, injected.text
        placed = order_placed()
        await publish_event(amqp_url, placed)
        await wait_until(lambda: placed.order_id in orders.notified, "order.placed")
        assert crashes == []
        failed = contracts.OrderFailed(
            **placed.model_dump(exclude={"type", "event_id", "order_id"}),
            event_id=uuid.uuid4(),
            order_id=uuid.uuid4(),
            reason="out_of_stock",
        )
        await publish_event(amqp_url, failed)
        await wait_until(lambda: crashes == ["crash"], "the crash on order.failed")
        await client.delete("/admin/chaos/faults", headers={"authorization": f"Bearer {token}"})


async def test_event_without_email_marks_the_order_without_sending(
    worker: httpx.AsyncClient, amqp_url: str, orders: FakeOrders
) -> None:
    """With no address to write to nothing is sent, yet orders still learns we are done."""
    skipped = consumed("skipped")
    event = order_placed(email=None)
    await publish_event(amqp_url, event)
    await wait_until(lambda: consumed("skipped") == skipped + 1, "event handled")
    assert orders.notified == [event.order_id]
    assert await notifications_of(worker, event.order_id) == []


async def test_duplicate_event_is_acked_without_sending_again(
    settings: Settings, amqp_url: str, orders: FakeOrders
) -> None:
    """The same event delivered twice sends one email; the copy counts as duplicate, acked."""
    sent, duplicates = consumed("sent"), consumed("duplicate")
    event = order_placed()
    async with running(create_app(settings)) as worker:
        await publish_event(amqp_url, event)
        await publish_event(amqp_url, event)
        await wait_until(
            lambda: consumed("sent") + consumed("duplicate") == sent + duplicates + 2,
            "both copies handled",
        )
        assert consumed("sent") == sent + 1
        assert consumed("duplicate") == duplicates + 1
        assert len(await notifications_of(worker, event.order_id)) == 1
    # Stopped: an unacknowledged message would be back in the queue now.
    assert await queue_depth(amqp_url, QUEUE) == 0
    assert await queue_depth(amqp_url, DEAD_LETTER_QUEUE) == 0


async def test_failing_orders_is_retried_and_the_email_sent_once(
    worker: httpx.AsyncClient, amqp_url: str, orders: FakeOrders
) -> None:
    """Orders failing twice costs two retries, not a second email."""
    sent = consumed("sent")
    retries = count("obslab_events_retried_total", event_type="order.placed")
    orders.failures = 2
    event = order_placed()
    with structlog.testing.capture_logs() as logs:
        await publish_event(amqp_url, event)
        await wait_until(lambda: consumed("sent") == sent + 1, "event handled")

    assert orders.notified == [event.order_id] * 3
    assert count("obslab_events_retried_total", event_type="order.placed") == retries + 2
    assert len([entry for entry in logs if entry["event"] == "notification.sent"]) == 1
    assert len(await notifications_of(worker, event.order_id)) == 1


async def test_orders_down_for_good_dead_letters_after_the_last_try(
    worker: httpx.AsyncClient, amqp_url: str, orders: FakeOrders, settings: Settings
) -> None:
    """When every try fails the message lands in the DLQ, after exactly max_attempts calls."""
    exhausted = dead_lettered("retries_exhausted")
    orders.failures = 1_000_000
    event = order_placed()
    await publish_event(amqp_url, event)

    await wait_until(lambda: dead_lettered("retries_exhausted") == exhausted + 1, "dead letter")
    assert orders.notified == [event.order_id] * settings.max_attempts
    await wait_until(lambda: has(amqp_url, DEAD_LETTER_QUEUE, 1), "message in the DLQ")
    # The email went out on the first try; the retries did not send it again.
    assert len(await notifications_of(worker, event.order_id)) == 1


async def test_unknown_order_is_dead_lettered_without_retrying(
    worker: httpx.AsyncClient, amqp_url: str, orders: FakeOrders
) -> None:
    """A 404 from orders is permanent: one call, then straight to the DLQ."""
    not_found = dead_lettered("order_not_found")
    orders.missing = True
    event = order_placed()
    await publish_event(amqp_url, event)
    await wait_until(lambda: dead_lettered("order_not_found") == not_found + 1, "dead letter")
    assert orders.notified == [event.order_id]
    await wait_until(lambda: has(amqp_url, DEAD_LETTER_QUEUE, 1), "message in the DLQ")


async def test_invalid_messages_go_straight_to_the_dlq(
    worker: httpx.AsyncClient, amqp_url: str, orders: FakeOrders
) -> None:
    """A message that is not an order event is dead-lettered at once, orders never called."""
    invalid = dead_lettered("invalid", "unknown")
    bodies = [b"not json", b'{"type": "order.placed"}', b'{"type": "order.shipped"}']
    for body in bodies:
        await publish(amqp_url, body, "order.placed")
    await wait_until(
        lambda: dead_lettered("invalid", "unknown") == invalid + len(bodies), "dead letters"
    )
    await wait_until(lambda: has(amqp_url, DEAD_LETTER_QUEUE, len(bodies)), "messages in the DLQ")
    assert orders.notified == []


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span ended while the module runs (the tracer provider is process-wide)."""
    exporter = InMemorySpanExporter()
    obskit.setup_tracing("notifications").add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays, but records nothing from now on


def add_trace_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["trace_id"] = obskit.current_trace_id()
    return event_dict


async def test_consumer_continues_the_publishers_trace(
    worker: httpx.AsyncClient, amqp_url: str, spans: InMemorySpanExporter
) -> None:
    """A traceparent header on the message makes the handling part of the publisher's trace."""
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    event = order_placed()
    with structlog.testing.capture_logs(processors=[add_trace_id]) as logs:
        # As another process would publish: our header, not one the instrumentation writes.
        with suppress_instrumentation():
            await publish(
                amqp_url,
                event.model_dump_json().encode(),
                event.type,
                headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            )

        def consumer_span_ended() -> bool:
            return any(s.kind is SpanKind.CONSUMER for s in in_trace(spans, trace_id))

        await wait_until(consumer_span_ended, "the consumer span")

    [consumer] = [s for s in in_trace(spans, trace_id) if s.kind is SpanKind.CONSUMER]
    [send] = [s for s in in_trace(spans, trace_id) if s.name == "notification.send"]
    assert send.parent is not None
    assert send.parent.span_id == consumer.context.span_id
    assert consumer.parent is not None
    assert format(consumer.parent.span_id, "016x") == parent_id
    [line] = [entry for entry in logs if entry["event"] == "notification.sent"]
    assert line["trace_id"] == trace_id


def in_trace(spans: InMemorySpanExporter, trace_id: str) -> list:  # type: ignore[type-arg]
    return [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]


async def test_worker_starts_without_a_broker_and_consumes_once_it_is_there(
    settings: Settings, amqp_url: str, backends: Backends, orders: FakeOrders
) -> None:
    """With the broker unreachable the worker is live but not ready, and connects later."""
    vhost = amqp_url.rsplit("/", 1)[1]
    await asyncio.to_thread(backends.drop_vhost, amqp_url)  # the broker refuses us for now
    async with serve_in_process(create_app(settings)) as worker:
        assert (await worker.get("/health/live")).status_code == 200
        ready = await worker.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "broker": "error: NotConsuming"}

        # The vhost returns: the next connection attempt gets in.
        await asyncio.to_thread(backends._rabbitmqctl, "add_vhost", vhost)
        await asyncio.to_thread(
            backends._rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"
        )
        await wait_until(lambda: is_ready(worker), "worker ready")
        event = order_placed()
        await publish_event(amqp_url, event)
        await wait_until(lambda: orders.notified == [event.order_id], "event handled")


async def test_unreachable_broker_does_not_block_startup_or_shutdown(database_url: str) -> None:
    """Nothing listening at the broker's address: the app serves, unready, and stops at once."""
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    settings = Settings(database_url=database_url, amqp_url=closed)
    async with serve_in_process(create_app(settings)) as worker:
        assert (await worker.get("/health/live")).status_code == 200
        assert (await worker.get("/health/ready")).json()["checks"]["broker"] != "ok"


async def test_consumer_resumes_after_the_broker_drops_the_connection(
    settings: Settings, amqp_url: str, backends: Backends, orders: FakeOrders
) -> None:
    """After the broker closes every connection, the robust one comes back and consumes."""
    vhost = amqp_url.rsplit("/", 1)[1]
    # Reconnect after 0.2s rather than aio-pika's default 5s, to keep the test short.
    quick = settings.model_copy(update={"amqp_url": f"{amqp_url}?reconnect_interval=0.2"})
    app = create_app(quick)  # before capturing: creating an app configures logging
    with structlog.testing.capture_logs() as logs:
        async with running(app) as worker:
            await asyncio.to_thread(
                backends._rabbitmqctl, "close_all_connections", "--vhost", vhost, "test outage"
            )
            await wait_until(
                lambda: any(entry["event"] == "broker.reconnected" for entry in logs),
                "reconnected",
            )
            event = order_placed()
            await publish_event(amqp_url, event)
            await wait_until(lambda: orders.notified == [event.order_id], "event handled")
            assert len(await notifications_of(worker, event.order_id)) == 1
    assert any(entry["event"] == "broker.disconnected" for entry in logs)


async def test_shutdown_lets_the_message_in_hand_finish(
    settings: Settings, amqp_url: str, orders: FakeOrders
) -> None:
    """Stopping while an email is being sent finishes it and acks before disconnecting."""
    slow = settings.model_copy(update={"send_latency_ms": 500})
    app = create_app(slow)
    event = order_placed()
    async with running(app):
        await publish_event(amqp_url, event)
        await wait_until(lambda: app.state.consumer.in_flight == 1, "message in hand")
    assert orders.notified == [event.order_id]
    assert await queue_depth(amqp_url, QUEUE) == 0


async def test_listing_needs_a_valid_order_id(worker: httpx.AsyncClient) -> None:
    """``order_id`` must be a UUID: anything else is a 422 with the JSON error body."""
    response = await worker.get("/notifications", params={"order_id": "42"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def has(amqp_url: str, queue: str, messages: int) -> bool:
    return await queue_depth(amqp_url, queue) == messages
