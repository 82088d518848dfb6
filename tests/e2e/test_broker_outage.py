"""RabbitMQ stopped and started while orders are being placed: nothing is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_checkout import place_order
from tests.support.auth import service_headers
from tests.support.backends import Backends, PrivateServer, private_rabbit, wait_for
from tests.support.otlp import OTLPReceiver
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def rabbit() -> Iterator[PrivateServer]:
    """A RabbitMQ of this test's own, since the test stops it."""
    broker = private_rabbit()
    yield broker
    broker.destroy()


def test_every_accepted_order_is_notified_exactly_once_across_a_broker_outage(
    backends: Backends, otlp: OTLPReceiver, rabbit: PrivateServer, tmp_path: Path
) -> None:
    """Orders keep being accepted while the broker is down; once it is back, every one
    of them is published from the outbox and notified exactly once."""
    stack = Stack(
        postgres_url=backends.postgres_url,
        redis_url=f"{backends.redis_url}/13",
        amqp_url=rabbit.url,
        otlp_endpoint=otlp.endpoint,
        log_dir=tmp_path,
    )
    accepted: list[str] = []
    refused: list[str] = []
    done = threading.Event()

    def shop_traffic() -> None:
        while not done.is_set():
            response = place_order(stack.urls["gateway"], [{"product_id": 4, "quantity": 1}])
            if response.status_code == 201:
                accepted.append(response.json()["id"])
            else:
                refused.append(f"{response.status_code} {response.text}")

    try:
        stack.start_all()
        traffic = threading.Thread(target=shop_traffic)
        traffic.start()
        try:
            wait_for(lambda: len(accepted) >= 5, 30, "orders before the outage")
            rabbit.stop()
            during = len(accepted)
            wait_for(lambda: len(accepted) >= during + 5, 30, "orders during the outage")
            rabbit.start()
            after = len(accepted)
            wait_for(lambda: len(accepted) >= after + 5, 30, "orders after the outage")
        finally:
            done.set()
            traffic.join()

        assert refused == []
        orders, notifications = stack.urls["orders"], stack.urls["notifications"]

        def all_notified() -> bool:
            return all(
                httpx.get(f"{orders}/orders/{order_id}", headers=service_headers("orders")).json()[
                    "notified_at"
                ]
                for order_id in accepted
            )

        wait_for(all_notified, 120, "every accepted order notified")
        for order_id in accepted:
            sent = httpx.get(
                f"{notifications}/notifications",
                params={"order_id": order_id},
                headers=service_headers("notifications"),
            )
            assert len(sent.json()) == 1, f"order {order_id}: {sent.json()}"
    finally:
        stack.close()
