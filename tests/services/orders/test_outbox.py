"""The transactional outbox: orders do not need the broker, and their events are not lost."""

from __future__ import annotations

import httpx
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

import obskit
from orders.main import create_app
from orders.settings import Settings
from tests.services.orders.shop import (
    Downstreams,
    fetch,
    next_event,
    order_body,
    orders_settings,
    wait_for,
)
from tests.support.apps import serve_in_process
from tests.support.backends import free_port


def backlog() -> float:
    return REGISTRY.get_sample_value("obslab_outbox_backlog") or 0.0


async def test_event_waits_for_the_broker_and_keeps_its_trace(
    database_url: str,
    downstreams: Downstreams,
    amqp_url: str,
    events: AbstractQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An order placed while the broker is down is accepted; its event is published later."""
    attempts = 0

    async def counted_connect(settings: Settings) -> AbstractRobustConnection:
        nonlocal attempts
        attempts += 1
        return await real_connect(settings)

    real_connect = obskit.connect_broker
    monkeypatch.setattr(obskit, "connect_broker", counted_connect)
    broker_down = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    app = create_app(orders_settings(database_url, downstreams, broker_down))
    with capture_logs() as logs:
        async with serve_in_process(app) as orders:
            placed = await orders.post("/orders", json=order_body((1, 1, 100)))
            assert placed.status_code == 201

            async def waiting() -> bool:
                return backlog() >= 1 and attempts >= 3

            await wait_for(waiting, "the event waits while the relay keeps trying")
    # One warning for the outage, however many attempts it took.
    assert [entry["event"] for entry in logs].count("outbox.broker_unavailable") == 1
    (row,) = await fetch(database_url, "SELECT published_at FROM outbox")
    assert row["published_at"] is None

    # Another instance, over the same database, with a broker that answers.
    app = create_app(orders_settings(database_url, downstreams, amqp_url))
    async with serve_in_process(app):
        event = await next_event(events)

        async def published() -> bool:
            rows = await fetch(database_url, "SELECT 1 FROM outbox WHERE published_at IS NULL")
            return not rows and backlog() == 0

        await wait_for(published, "the outbox row is marked published")
    assert (event["type"], event["order_id"]) == ("order.placed", placed.json()["id"])
    # Stored with the order, the trace context outlived both the outage and the process.
    trace_id = str(event["_message"].headers["traceparent"]).split("-")[1]
    assert trace_id == placed.headers["x-trace-id"]


async def test_orders_stay_ready_without_the_broker(orders_alone: httpx.AsyncClient) -> None:
    """With the broker unreachable, orders still reports ready (its database answers)."""
    response = await orders_alone.get("/health/ready")
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
