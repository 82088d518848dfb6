"""Checkout against real inventory, payments, PostgreSQL and RabbitMQ: outcomes and their events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractQueue

from orders.main import create_app
from tests.services.orders.shop import (
    CARD,
    DECLINED_CARD,
    Downstreams,
    fetch,
    next_event,
    order_body,
    orders_settings,
    stock,
)
from tests.support.apps import serve_in_process
from tests.support.backends import free_port


async def test_confirmed_order(
    orders: httpx.AsyncClient, downstreams: Downstreams, events: AbstractQueue
) -> None:
    """A payable order in stock is confirmed: stock taken, card charged, OrderPlaced published."""
    response = await orders.post("/orders", json=order_body((1, 3, 250), (2, 1, 1000)))

    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "confirmed"
    assert order["total_cents"] == 1750
    assert (await stock(downstreams, 1), await stock(downstreams, 2)) == (7, 9)
    charge = await downstreams.payments.get(f"/charges/{order['id']}")
    assert charge.status_code == 200
    assert charge.json()["amount_cents"] == 1750
    assert (await orders.get(f"/orders/{order['id']}")).json() == order

    event = await next_event(events)
    assert event["type"] == "order.placed"
    assert (event["order_id"], event["total_cents"]) == (order["id"], 1750)
    message = event["_message"]
    assert message.routing_key == "order.placed"
    assert message.message_id == event["event_id"]
    # The event continues the checkout's trace, across the outbox and the broker.
    trace_id = str(message.headers["traceparent"]).split("-")[1]
    assert trace_id == response.headers["x-trace-id"]


async def test_out_of_stock(
    orders: httpx.AsyncClient, downstreams: Downstreams, events: AbstractQueue, database_url: str
) -> None:
    """More than the stock is a 409 with inventory's shortages, a failed order, no charge."""
    response = await orders.post("/orders", json=order_body((1, 2, 100), (3, 11, 100)))

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "out_of_stock"
    assert error["details"] == [{"product_id": 3, "requested": 11, "available": 10}]
    assert await stock(downstreams, 1) == 10  # all or nothing
    (row,) = await fetch(database_url, "SELECT id, status, failure_reason FROM orders")
    assert (row["status"], row["failure_reason"]) == ("failed", "out_of_stock")
    assert (await downstreams.payments.get(f"/charges/{row['id']}")).status_code == 404

    event = await next_event(events)
    assert (event["type"], event["reason"]) == ("order.failed", "out_of_stock")
    assert event["order_id"] == str(row["id"])


async def test_declined_card(
    orders: httpx.AsyncClient, downstreams: Downstreams, events: AbstractQueue, database_url: str
) -> None:
    """A declined card is a 402; the reserved stock is released and OrderFailed published."""
    response = await orders.post("/orders", json=order_body((4, 5, 100), card=DECLINED_CARD))

    assert response.status_code == 402
    assert response.json()["error"]["code"] == "card_declined"
    assert await stock(downstreams, 4) == 10
    (row,) = await fetch(database_url, "SELECT id, status, failure_reason FROM orders")
    assert (row["status"], row["failure_reason"]) == ("failed", "card_declined")
    reservation = await downstreams.inventory.post(f"/reservations/{row['id']}/release")
    assert reservation.json()["status"] == "released"

    event = await next_event(events)
    assert (event["type"], event["reason"]) == ("order.failed", "card_declined")


async def test_payments_down(
    database_url: str, downstreams: Downstreams, amqp_url: str, events: AbstractQueue
) -> None:
    """With payments unreachable the order fails with 503 and its stock is released."""
    settings = orders_settings(
        database_url, downstreams, amqp_url, payments_url=f"http://127.0.0.1:{free_port()}"
    )
    async with serve_in_process(create_app(settings)) as orders:
        response = await orders.post("/orders", json=order_body((5, 4, 100)))
        event = await next_event(events)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert await stock(downstreams, 5) == 10
    (row,) = await fetch(database_url, "SELECT status, failure_reason FROM orders")
    assert (row["status"], row["failure_reason"]) == ("failed", "payment_unavailable")
    assert (event["type"], event["reason"]) == ("order.failed", "payment_unavailable")


async def test_same_key_same_body_replays_the_first_answer(
    orders: httpx.AsyncClient, downstreams: Downstreams, database_url: str
) -> None:
    """A retry with the same key and body gets the first answer; nothing is done twice."""
    headers = {"Idempotency-Key": "checkout-1"}
    first = await orders.post("/orders", json=order_body((6, 2, 300)), headers=headers)
    again = await orders.post("/orders", json=order_body((6, 2, 300)), headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await stock(downstreams, 6) == 8
    assert len(await fetch(database_url, "SELECT id FROM orders")) == 1


async def test_same_key_replays_a_failure(orders: httpx.AsyncClient) -> None:
    """A failed checkout is replayed too: same status, same error body."""
    headers = {"Idempotency-Key": "declined-1"}
    body = order_body((6, 1, 300), card=DECLINED_CARD)
    first = await orders.post("/orders", json=body, headers=headers)
    again = await orders.post("/orders", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (402, 402)
    assert again.json() == first.json()


async def test_same_key_other_body_is_a_422(orders: httpx.AsyncClient) -> None:
    """Reusing a key for a different request is refused with idempotency_key_reused."""
    headers = {"Idempotency-Key": "checkout-2"}
    first = await orders.post("/orders", json=order_body((7, 1, 300)), headers=headers)
    other = await orders.post("/orders", json=order_body((7, 2, 300)), headers=headers)

    assert first.status_code == 201
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


async def test_concurrent_requests_with_one_key_place_one_order(
    orders: httpx.AsyncClient, downstreams: Downstreams, events: AbstractQueue, database_url: str
) -> None:
    """Two simultaneous requests with one key make one order, one charge and one event."""
    headers = {"Idempotency-Key": "double-click"}
    body = order_body((8, 1, 500))
    answers = await asyncio.gather(
        orders.post("/orders", json=body, headers=headers),
        orders.post("/orders", json=body, headers=headers),
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409])
    if statuses == [201, 409]:
        (busy,) = [a for a in answers if a.status_code == 409]
        assert busy.json()["error"]["code"] == "request_in_progress"
    (row,) = await fetch(database_url, "SELECT id FROM orders")
    assert (await downstreams.payments.get(f"/charges/{row['id']}")).status_code == 200
    assert await stock(downstreams, 8) == 9
    assert len(await fetch(database_url, "SELECT id FROM outbox")) == 1
    assert (await next_event(events))["order_id"] == str(row["id"])


async def test_free_order_is_not_charged(
    orders: httpx.AsyncClient, downstreams: Downstreams
) -> None:
    """An order that costs nothing is confirmed without a charge (payments takes 1 cent up)."""
    response = await orders.post("/orders", json=order_body((10, 1, 0)))

    assert response.status_code == 201
    assert response.json()["total_cents"] == 0
    assert await stock(downstreams, 10) == 9
    charge = await downstreams.payments.get(f"/charges/{response.json()['id']}")
    assert charge.status_code == 404


async def test_notified_is_recorded_once(orders: httpx.AsyncClient) -> None:
    """Marking an order notified sets notified_at once; marking it again changes nothing."""
    order = (await orders.post("/orders", json=order_body((9, 1, 100)))).json()
    assert order["notified_at"] is None

    first = await orders.post(f"/orders/{order['id']}/notified")
    again = await orders.post(f"/orders/{order['id']}/notified")

    assert first.status_code == again.status_code == 200
    assert first.json()["notified_at"] is not None
    assert again.json()["notified_at"] == first.json()["notified_at"]


@pytest.mark.parametrize("path", ["/orders/{id}", "/orders/{id}/notified"])
async def test_unknown_order_is_a_404(orders_alone: httpx.AsyncClient, path: str) -> None:
    """An order id nobody placed is a 404 order_not_found."""
    url = path.format(id=uuid.uuid4())
    client = orders_alone
    response = await (client.get(url) if path == "/orders/{id}" else client.post(url))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"


async def test_order_id_must_be_a_uuid(orders_alone: httpx.AsyncClient) -> None:
    """An order id that is not a UUID is refused before reaching the database."""
    response = await orders_alone.get("/orders/42")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def _with(**changes: Any) -> dict[str, Any]:
    return {**order_body((1, 1, 100)), **changes}


def _item(**changes: Any) -> dict[str, Any]:
    return _with(items=[{"product_id": 1, "quantity": 1, "unit_price_cents": 100, **changes}])


def _card(**changes: Any) -> dict[str, Any]:
    return _with(card={**CARD, **changes})


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_item(quantity=0), id="zero-quantity"),
        pytest.param(_item(quantity=-1), id="negative-quantity"),
        pytest.param(_item(quantity=101), id="huge-quantity"),
        pytest.param(_item(quantity="two"), id="quantity-not-a-number"),
        pytest.param(_item(product_id=0), id="product-id-zero"),
        pytest.param(_item(product_id=2**31), id="product-id-too-big"),
        pytest.param(_item(unit_price_cents=-5), id="negative-price"),
        pytest.param(_item(unit_price_cents=10_000_001), id="huge-price"),
        pytest.param(_item(colour="red"), id="unknown-item-field"),
        pytest.param(_with(items=[]), id="no-items"),
        pytest.param(_with(items=[_item()["items"][0]] * 21), id="too-many-items"),
        pytest.param(_with(items="all of them"), id="items-not-a-list"),
        pytest.param(_item(quantity=2, unit_price_cents=10_000_000), id="total-over-payments-max"),
        pytest.param(_card(number="4242424242424241"), id="card-fails-luhn"),
        pytest.param(_card(number="4242-4242"), id="card-not-digits"),
        pytest.param(_card(expiry="13/30"), id="bad-expiry"),
        pytest.param(_card(expiry="01/20"), id="expired-card"),
        pytest.param(_card(cvc="12"), id="short-cvc"),
        pytest.param(_with(card=None), id="no-card"),
        pytest.param(_with(email="not an address"), id="bad-email"),
        pytest.param(_with(email="ada\x00@example.com"), id="email-with-nul"),
        pytest.param(_with(email="a@" + "b" * 300 + ".com"), id="long-email"),
        pytest.param(_with(coupon="FREE"), id="unknown-field"),
    ],
)
async def test_bad_order_is_a_422(orders_alone: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """A malformed order is refused with the JSON validation error, never echoing the card."""
    response = await orders_alone.post("/orders", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert CARD["number"] not in response.text


async def test_too_long_idempotency_key_is_a_422(orders_alone: httpx.AsyncClient) -> None:
    """An Idempotency-Key over 200 characters is refused."""
    headers = {"Idempotency-Key": "k" * 201}
    response = await orders_alone.post("/orders", json=order_body((1, 1, 100)), headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
