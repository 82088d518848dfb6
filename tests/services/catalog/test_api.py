"""The catalog against real PostgreSQL and Redis: lookups, cache-aside, invalidation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from catalog.main import create_app
from catalog.settings import Settings
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.auth import service_headers


def cache_count(result: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "obslab_cache_requests_total", {"cache": "product", "result": result}
        )
        or 0.0
    )


@pytest.fixture
async def catalog(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, redis_url=redis_url)
    async with serve_in_process(create_app(settings)) as client:
        yield client


async def test_demo_products_are_listed(catalog: httpx.AsyncClient) -> None:
    """An empty catalog is seeded with the twelve demo products, listed in id order."""
    response = await catalog.get("/products", params={"limit": 5})
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["items"]] == [1, 2, 3, 4, 5]


async def test_second_read_is_a_cache_hit(catalog: httpx.AsyncClient) -> None:
    """The first read of a product misses the cache and fills it; the second hits."""
    hits, misses = cache_count("hit"), cache_count("miss")
    first = await catalog.get("/products/3")
    second = await catalog.get("/products/3")
    assert first.json() == second.json()
    assert cache_count("miss") == misses + 1
    assert cache_count("hit") == hits + 1


async def test_update_invalidates_the_cache(catalog: httpx.AsyncClient) -> None:
    """A price change is visible at once, though the old price was cached."""
    await catalog.get("/products/2")
    await catalog.get("/products", params={"limit": 3})
    changed = await catalog.patch("/products/2", json={"price_cents": 999})
    assert changed.status_code == 200
    assert (await catalog.get("/products/2")).json()["price_cents"] == 999
    page = (await catalog.get("/products", params={"limit": 3})).json()["items"]
    assert page[1]["price_cents"] == 999


async def test_lookup_of_several_ids_leaves_unknown_ones_out(catalog: httpx.AsyncClient) -> None:
    """``?id=`` returns the known products in the order asked, without the unknown ones."""
    response = await catalog.get("/products", params=[("id", 4), ("id", 99999), ("id", 1)])
    assert [p["id"] for p in response.json()["items"]] == [4, 1]


async def test_unknown_product_is_a_json_404(catalog: httpx.AsyncClient) -> None:
    """A product that does not exist is a 404 with the JSON error body."""
    response = await catalog.get("/products/424242")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "product_not_found"


@pytest.mark.parametrize("path", ["/products/0", "/products/abc", "/products/99999999999"])
async def test_bad_product_id_is_a_422(catalog: httpx.AsyncClient, path: str) -> None:
    """Ids that are not positive 32-bit integers are refused before reaching the database."""
    response = await catalog.get(path)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_duplicate_sku_is_a_409(catalog: httpx.AsyncClient) -> None:
    """Creating a product with a SKU that exists is a conflict, not a 500."""
    body = {"sku": "NEW-1", "name": "New", "price_cents": 100}
    assert (await catalog.post("/products", json=body)).status_code == 201
    again = await catalog.post("/products", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "sku_taken"


async def test_ready_checks_database_and_redis(catalog: httpx.AsyncClient) -> None:
    """Readiness reports each of the catalog's own dependencies."""
    response = await catalog.get("/health/ready")
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_catalog_answers_when_redis_is_down(database_url: str) -> None:
    """With Redis unreachable the catalog serves from the database and stays ready,
    degraded: a cache outage does not take it out of rotation."""
    settings = Settings(database_url=database_url, redis_url="redis://127.0.0.1:1/0")
    async with serve_in_process(create_app(settings)) as client:
        response = await client.get("/products/1")
        assert response.status_code == 200
        ready = await client.get("/health/ready")
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
        assert ready.json()["checks"]["redis"] != "ok"


async def test_sqlite_is_the_default_database(tmp_path, redis_url: str) -> None:
    """Without a database URL the catalog keeps its products in SQLite under data_dir."""
    settings = Settings(data_dir=str(tmp_path), redis_url=redis_url)
    async with serve_in_process(create_app(settings)) as client:
        assert (await client.get("/products/1")).status_code == 200
    assert (tmp_path / "catalog.sqlite3").exists()


async def test_catalog_serves_over_real_http(database_url: str, redis_url: str) -> None:
    """Served by uvicorn on a port, the catalog answers a real HTTP client."""
    settings = Settings(database_url=database_url, redis_url=redis_url)
    async with (
        serve_on_port(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=service_headers("catalog")) as client,
    ):
        response = await client.get("/products/1")
    assert response.status_code == 200
    assert "x-trace-id" in response.headers
