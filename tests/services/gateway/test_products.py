"""Products through the gateway, from a real catalog on real PostgreSQL and Redis."""

from __future__ import annotations

import httpx
import pytest

from gateway.main import create_app
from gateway.settings import Settings
from obskit import ServiceClient
from tests.support.apps import serve_in_process


async def test_products_are_listed_by_page(gateway: httpx.AsyncClient) -> None:
    """The gateway passes catalog's page on: the products in id order, with limit and offset."""
    first = await gateway.get("/api/products", params={"limit": 5})
    assert first.status_code == 200
    assert [p["id"] for p in first.json()["items"]] == [1, 2, 3, 4, 5]
    assert (first.json()["limit"], first.json()["offset"]) == (5, 0)
    last = await gateway.get("/api/products", params={"limit": 5, "offset": 10})
    assert [p["id"] for p in last.json()["items"]] == [11, 12]


async def test_one_product_is_read(gateway: httpx.AsyncClient) -> None:
    """One product comes back with every field catalog gives it."""
    response = await gateway.get("/api/products/3")
    assert response.status_code == 200
    product = response.json()
    assert (product["id"], product["sku"], product["price_cents"]) == (3, "HOOD-SPAN", 5500)
    assert set(product) == {"id", "sku", "name", "description", "price_cents", "updated_at"}


async def test_unknown_product_is_catalogs_404(gateway: httpx.AsyncClient) -> None:
    """Catalog's 404 passes through as a 404 with its JSON error body, and the gateway's
    trace id, as on every answer."""
    response = await gateway.get("/api/products/424242")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "product_not_found"
    assert len(response.headers["x-trace-id"]) == 32


@pytest.mark.parametrize(
    "path",
    [
        "/api/products/0",
        "/api/products/-1",
        "/api/products/abc",
        "/api/products/2147483648",
        "/api/products?limit=0",
        "/api/products?limit=101",
        "/api/products?offset=-1",
        "/api/products?offset=1000001",
    ],
)
async def test_bad_ids_and_bounds_are_422(offline_gateway: httpx.AsyncClient, path: str) -> None:
    """Ids and page bounds outside catalog's own are refused by the gateway, without a call."""
    response = await offline_gateway.get(path)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_catalog_down_is_a_json_503(offline_gateway: httpx.AsyncClient) -> None:
    """When catalog cannot be reached the gateway answers 503 with the JSON error body."""
    response = await offline_gateway.get("/api/products/1")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


PRODUCT = {
    "id": 1,
    "sku": "TEE-OTEL",
    "name": "OpenTelemetry T-shirt",
    "description": "",
    "price_cents": 2500,
    "updated_at": "2025-01-01T00:00:00Z",
}


async def ask_for_product_1(catalog_answer: httpx.Response, nowhere: str) -> httpx.Response:
    """Read product 1 through a gateway whose catalog gives ``catalog_answer``, whatever it is."""
    app = create_app(Settings(catalog_url=nowhere, orders_url=nowhere))
    async with serve_in_process(app) as client:
        fake = httpx.MockTransport(lambda _: catalog_answer)
        app.state.catalog = ServiceClient("catalog", nowhere, app.state.settings, transport=fake)
        try:
            return await client.get("/api/products/1")
        finally:
            await app.state.catalog.aclose()


async def test_answer_within_the_contract_passes_unchanged(nowhere: str) -> None:
    """A product as catalog documents it reaches the client byte for byte."""
    answer = httpx.Response(200, json=PRODUCT)
    response = await ask_for_product_1(answer, nowhere)
    assert response.status_code == 200
    assert response.content == answer.content


ANSWERS_OUTSIDE_THE_CONTRACT = {
    "unexpected status": httpx.Response(400, json={"error": {"code": "x", "message": "x"}}),
    "not JSON": httpx.Response(200, text="<html>"),
    "wrong shape": httpx.Response(200, json={"items": []}),
    "id as a string": httpx.Response(200, json={**PRODUCT, "id": "1"}),
    "404 without the error body": httpx.Response(404, json={"detail": "Not Found"}),
}


@pytest.mark.parametrize(
    "answer", ANSWERS_OUTSIDE_THE_CONTRACT.values(), ids=ANSWERS_OUTSIDE_THE_CONTRACT.keys()
)
async def test_answer_outside_the_contract_is_a_502(nowhere: str, answer: httpx.Response) -> None:
    """What catalog may not answer is a 502 bad_gateway, never a 500 or an undocumented body."""
    response = await ask_for_product_1(answer, nowhere)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "bad_gateway"
