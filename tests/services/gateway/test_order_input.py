"""What the gateway refuses on its own, before an order reaches orders."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

CARD = {"number": "4242424242424242", "expiry": "12/49", "cvc": "123"}


def order(**changes: Any) -> dict[str, Any]:
    return {"items": [{"product_id": 1, "quantity": 2}], "card": CARD, **changes}


def orders_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("obslab_gateway_orders_total", {"outcome": outcome}) or 0.0


async def test_unknown_product_is_refused_without_calling_orders(
    gateway: httpx.AsyncClient,
) -> None:
    """Ids catalog does not know are a 422 listing them; orders, which is down, is never called."""
    rejected = orders_counted("rejected")
    items = [
        {"product_id": 1, "quantity": 1},
        {"product_id": 99999, "quantity": 1},
        {"product_id": 424242, "quantity": 1},
    ]
    response = await gateway.post("/api/orders", json=order(items=items))
    assert response.status_code == 422  # not the 503 that calling orders would give
    error = response.json()["error"]
    assert error["code"] == "unknown_product"
    assert error["details"] == [{"product_id": 99999}, {"product_id": 424242}]
    assert orders_counted("rejected") == rejected + 1


BAD_ORDERS = {
    "items not a list": order(items="a lot"),
    "no items": order(items=[]),
    "21 items": order(items=[{"product_id": i, "quantity": 1} for i in range(1, 22)]),
    "quantity as words": order(items=[{"product_id": 1, "quantity": "two"}]),
    "zero quantity": order(items=[{"product_id": 1, "quantity": 0}]),
    "negative quantity": order(items=[{"product_id": 1, "quantity": -1}]),
    "quantity over 100": order(items=[{"product_id": 1, "quantity": 101}]),
    "huge quantity": order(items=[{"product_id": 1, "quantity": 10**30}]),
    "fractional id": order(items=[{"product_id": 1.5, "quantity": 1}]),
    "id over 32 bits": order(items=[{"product_id": 2**31, "quantity": 1}]),
    "duplicate ids": order(
        items=[{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}]
    ),
    "price set by the client": order(
        items=[{"product_id": 1, "quantity": 1, "unit_price_cents": 1}]
    ),
    "extra field": order(coupon="FREE"),
    "extra card field": order(card={**CARD, "holder": "Ada"}),
    "no card": {"items": [{"product_id": 1, "quantity": 1}]},
    "card number with letters": order(card={**CARD, "number": "4242-4242-abcd-4242"}),
    "card number too short": order(card={**CARD, "number": "4242 4242 42"}),
    "card number mistyped": order(card={**CARD, "number": "4242424242424241"}),
    "expiry not MM/YY": order(card={**CARD, "expiry": "2030-12"}),
    "not an object": [1, 2, 3],
}


@pytest.mark.parametrize("body", BAD_ORDERS.values(), ids=BAD_ORDERS.keys())
async def test_bad_order_is_a_json_422(offline_gateway: httpx.AsyncClient, body: Any) -> None:
    """A malformed order is a 422 validation_error, decided before any service is called."""
    response = await offline_gateway.post("/api/orders", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_malformed_json_is_a_422(offline_gateway: httpx.AsyncClient) -> None:
    """A body that is not valid JSON is a 422 JSON error, not a 500."""
    response = await offline_gateway.post(
        "/api/orders", content=b'{"items": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("key", ["", "has space", "semi;colon", "k" * 201])
async def test_bad_idempotency_key_is_a_422(offline_gateway: httpx.AsyncClient, key: str) -> None:
    """An Idempotency-Key must be 1 to 200 letters, digits, '_' or '-'."""
    response = await offline_gateway.post(
        "/api/orders", json=order(), headers={"Idempotency-Key": key}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_body_that_is_not_json_is_a_415(offline_gateway: httpx.AsyncClient) -> None:
    """A form-encoded order is refused with 415 by the kit's middleware."""
    response = await offline_gateway.post("/api/orders", data={"items": "1"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_oversize_body_is_a_413(offline_gateway: httpx.AsyncClient) -> None:
    """A body over the 64 KiB limit is refused with 413 before it is parsed."""
    response = await offline_gateway.post("/api/orders", json=order(email="a" * 70_000 + "@x"))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_validation_error_does_not_echo_the_card(offline_gateway: httpx.AsyncClient) -> None:
    """A refused order's error body never contains the card it carried."""
    response = await offline_gateway.post("/api/orders", json=order(items=[]))
    assert response.status_code == 422
    assert CARD["number"] not in response.text
