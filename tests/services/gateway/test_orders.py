"""Orders placed through the gateway, over the whole chain running in this process."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

CARD = {"number": "4242424242424242", "expiry": "12/49", "cvc": "123"}
DECLINED_CARD = {**CARD, "number": "4000000000000002"}
ITEMS = [{"product_id": 1, "quantity": 2}, {"product_id": 4, "quantity": 1}]


def orders_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("obslab_gateway_orders_total", {"outcome": outcome}) or 0.0


async def test_order_is_confirmed_at_catalogs_prices(shop: httpx.AsyncClient) -> None:
    """A good order is 201 confirmed, priced by catalog (2 x 2500 + 500), and can be read back."""
    created = orders_counted("created")
    response = await shop.post("/api/orders", json={"items": ITEMS, "card": CARD})
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "confirmed"
    assert [i["unit_price_cents"] for i in order["items"]] == [2500, 500]
    assert order["total_cents"] == 5500
    assert orders_counted("created") == created + 1
    read = await shop.get(f"/api/orders/{order['id']}")
    assert read.status_code == 200
    assert read.json()["id"] == order["id"]


async def test_card_number_may_be_grouped(shop: httpx.AsyncClient) -> None:
    """A card number written in groups, with spaces or dashes, is accepted as payments does."""
    for number in ("4242 4242 4242 4242", "4242-4242-4242-4242"):
        card = {**CARD, "number": number}
        response = await shop.post("/api/orders", json={"items": ITEMS, "card": card})
        assert response.status_code == 201, response.text


async def test_same_idempotency_key_gives_the_same_order(shop: httpx.AsyncClient) -> None:
    """Sending an order twice with one Idempotency-Key places it once: the same order comes back."""
    body = {"items": ITEMS, "card": CARD}
    headers = {"Idempotency-Key": f"test-{uuid.uuid4().hex}"}
    first = await shop.post("/api/orders", json=body, headers=headers)
    second = await shop.post("/api/orders", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"  # orders' header, passed on


async def test_without_a_key_each_request_is_a_new_order(shop: httpx.AsyncClient) -> None:
    """The key the gateway makes up is per request: two requests without one are two orders."""
    body = {"items": ITEMS, "card": CARD}
    first = await shop.post("/api/orders", json=body)
    second = await shop.post("/api/orders", json=body)
    assert first.json()["id"] != second.json()["id"]


async def test_declined_card_passes_through_as_402(shop: httpx.AsyncClient) -> None:
    """Orders' 402 card_declined reaches the client unchanged, and counts as rejected."""
    rejected = orders_counted("rejected")
    response = await shop.post("/api/orders", json={"items": ITEMS, "card": DECLINED_CARD})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "card_declined"
    assert orders_counted("rejected") == rejected + 1


async def test_out_of_stock_passes_through_as_409(shop: httpx.AsyncClient) -> None:
    """More than inventory holds is orders' 409 out_of_stock, with its details."""
    all_of_it = {"items": [{"product_id": 2, "quantity": 100}], "card": CARD}
    assert (await shop.post("/api/orders", json=all_of_it)).status_code == 201
    one_more = {"items": [{"product_id": 2, "quantity": 1}], "card": CARD}
    response = await shop.post("/api/orders", json=one_more)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "out_of_stock"
    assert error["details"] == [{"product_id": 2, "requested": 1, "available": 0}]


async def test_key_reused_for_another_order_is_422(shop: httpx.AsyncClient) -> None:
    """Orders' 422 idempotency_key_reused passes through when one key carries two orders."""
    headers = {"Idempotency-Key": f"test-{uuid.uuid4().hex}"}
    first = await shop.post("/api/orders", json={"items": ITEMS, "card": CARD}, headers=headers)
    assert first.status_code == 201
    other = {"items": [{"product_id": 3, "quantity": 1}], "card": CARD}
    second = await shop.post("/api/orders", json=other, headers=headers)
    assert second.status_code == 422
    assert second.json()["error"]["code"] == "idempotency_key_reused"


async def test_unknown_order_is_a_404(shop: httpx.AsyncClient) -> None:
    """An order id orders does not know is its 404, passed through."""
    response = await shop.get(f"/api/orders/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"


async def test_bad_order_id_is_a_422(offline_gateway: httpx.AsyncClient) -> None:
    """An order id that is not a UUID is refused without calling orders."""
    response = await offline_gateway.get("/api/orders/42")
    assert response.status_code == 422


async def test_orders_unreachable_is_a_json_503(gateway: httpx.AsyncClient) -> None:
    """With orders down, an order (counted as failed) and a lookup are 503 JSON errors."""
    failed = orders_counted("failed")
    placed = await gateway.post("/api/orders", json={"items": ITEMS, "card": CARD})
    read = await gateway.get(f"/api/orders/{uuid.uuid4()}")
    for response in (placed, read):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
    assert orders_counted("failed") == failed + 1


async def test_gateway_does_not_log_the_card(gateway: httpx.AsyncClient) -> None:
    """Forwarding an order logs how it ended, never the card (redaction is not relied on)."""
    # capture_logs replaces the processors, so the kit's redaction does not run here.
    with capture_logs() as logs:
        response = await gateway.post(
            "/api/orders", json={"items": ITEMS, "card": CARD, "email": "ada@example.com"}
        )
    assert response.status_code == 503
    assert [e["outcome"] for e in logs if e["event"] == "order.answered"] == ["failed"]
    for secret in CARD.values():
        assert secret not in repr(logs)


async def test_no_service_in_the_chain_logs_the_card(shop: httpx.AsyncClient) -> None:
    """Across the gateway, orders and payments, no log event holds the card number or cvc."""
    # capture_logs replaces the processors, so the kit's redaction does not run here.
    with capture_logs() as logs:
        response = await shop.post("/api/orders", json={"items": ITEMS, "card": CARD})
    assert response.status_code == 201
    assert any(e["event"] == "order.answered" for e in logs)
    assert CARD["number"] not in repr(logs)
    assert f"'{CARD['cvc']}'" not in repr(logs)
