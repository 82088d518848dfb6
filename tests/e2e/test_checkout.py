"""One checkout through the real processes: one trace, correlated logs, nothing oversold."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.auth import auth_headers, service_headers
from tests.support.backends import wait_for
from tests.support.otlp import OTLPReceiver, Span
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

CARD = {"number": "4242424242424242", "expiry": "12/39", "cvc": "123"}
CHAIN = {"gateway", "catalog", "orders", "inventory", "payments", "notifications"}


def place_order(gateway: str, items: list[dict[str, int]], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway}/api/orders",
        json={"items": items, "card": CARD, "email": "learner@example.com"},
        headers={**auth_headers(gateway), **headers},
        timeout=30,
    )


def notified(gateway: str, order_id: str) -> bool:
    order = httpx.get(
        f"{gateway}/api/orders/{order_id}", headers=auth_headers(gateway), timeout=10
    ).json()
    return order.get("notified_at") is not None


def test_one_checkout_is_one_trace_with_its_logs(shop: Stack, otlp: OTLPReceiver) -> None:
    """An order placed at the gateway yields one trace holding spans of every service down
    to the notifications worker, and log lines of several services carrying its trace id."""
    gateway = shop.urls["gateway"]
    response = place_order(gateway, [{"product_id": 1, "quantity": 2}])
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "confirmed"
    trace_id = response.headers["x-trace-id"]

    wait_for(lambda: notified(gateway, order["id"]), 30, "order notified")
    spans = otlp.wait_for_trace(trace_id, CHAIN, timeout=30)
    assert {span.service for span in spans} >= CHAIN

    # Every span of the trace hangs off another span of it, except the one root. A parent
    # ends (and is exported) after its children, so wait for the trace to be whole.
    def roots() -> list[Span]:
        spans = otlp.trace(trace_id)
        ids = {span.span_id for span in spans}
        return [span for span in spans if span.parent_span_id not in ids]

    wait_for(lambda: len(roots()) == 1, 30, "every span's parent")
    assert roots()[0].service == "gateway"

    wait_for(
        lambda: len({r.service for r in otlp.logs_of(trace_id)}) >= 4,
        30,
        "OTLP log records of four services",
    )
    for service in ("gateway", "orders", "payments", "notifications"):
        lines = [line for line in shop.logs(service) if line.get("trace_id") == trace_id]
        assert lines, f"no log line of {service} carries the trace id"
        assert all(line["service"] == service and line["span_id"] for line in lines)


def test_card_number_never_leaves_the_services(shop: Stack, otlp: OTLPReceiver) -> None:
    """The test card appears in no log file, span attribute or log record of any service."""
    response = place_order(shop.urls["gateway"], [{"product_id": 2, "quantity": 1}])
    assert response.status_code == 201
    trace_id = response.headers["x-trace-id"]
    otlp.wait_for_trace(trace_id, {"payments"}, timeout=30)
    for service in CHAIN:
        assert CARD["number"] not in (shop.log_dir / f"{service}.log").read_text()
    exported = [str(span.attributes) for span in otlp.spans]
    exported += [record.body + str(record.attributes) for record in otlp.logs]
    assert not [text for text in exported if CARD["number"] in text]


def test_concurrent_orders_for_the_last_items_never_oversell(shop: Stack) -> None:
    """Twenty simultaneous orders for the last five units: five succeed, the rest are 409."""
    inventory, gateway = shop.urls["inventory"], shop.urls["gateway"]
    stock = service_headers("inventory")  # inventory is internal: tests call it as a service
    put = httpx.put(f"{inventory}/stock/7", json={"available": 5}, headers=stock)
    assert put.status_code == 200

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(
            pool.map(lambda _: place_order(gateway, [{"product_id": 7, "quantity": 1}]), range(20))
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 5 + [409] * 15
    assert httpx.get(f"{inventory}/stock/7", headers=stock).json()["available"] == 0


def test_same_idempotency_key_never_charges_twice(shop: Stack) -> None:
    """A client retrying with the same Idempotency-Key gets the same order back."""
    gateway = shop.urls["gateway"]
    first = place_order(
        gateway, [{"product_id": 3, "quantity": 1}], **{"Idempotency-Key": "k-e2e-1"}
    )
    again = place_order(
        gateway, [{"product_id": 3, "quantity": 1}], **{"Idempotency-Key": "k-e2e-1"}
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    charge = httpx.get(
        f"{shop.urls['payments']}/charges/{first.json()['id']}", headers=service_headers("payments")
    ).json()
    assert charge["amount_cents"] == first.json()["total_cents"]
