"""Product reads served from the gateway's last good copy while catalog is down."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from prometheus_client import REGISTRY

from catalog.main import create_app as create_catalog
from catalog.settings import Settings as CatalogSettings
from gateway.main import create_app
from gateway.settings import Settings
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.backends import free_port


def fallbacks(call_site: str) -> float:
    return REGISTRY.get_sample_value("obslab_fallbacks_total", {"call_site": call_site}) or 0.0


async def test_products_are_served_stale_while_catalog_is_down(
    tmp_path: Path, redis_url: str
) -> None:
    """Reads catalog answered before are served again, marked catalog-stale, once it stops."""
    catalog = create_catalog(CatalogSettings(data_dir=str(tmp_path), redis_url=redis_url))
    catalog_running = AsyncExitStack()
    catalog_url = await catalog_running.enter_async_context(serve_on_port(catalog))
    # A breaker that opens at the first failures, so both ways down are seen: the
    # failed call, then the call refused by the open breaker.
    settings = Settings(
        catalog_url=catalog_url,
        orders_url=f"http://127.0.0.1:{free_port()}",
        breaker_window_size=2,
        breaker_minimum_calls=2,
        breaker_wait_open_s=600,
    )
    app = create_app(settings)
    async with catalog_running, serve_in_process(app) as gateway:
        fresh_page = await gateway.get("/api/products", params={"limit": 3})
        fresh_product = await gateway.get("/api/products/7")
        await catalog_running.aclose()
        assert "x-degraded" not in fresh_page.headers
        assert "degraded" not in fresh_page.json()
        before = fallbacks("gateway.read_product"), fallbacks("gateway.list_products")

        # catalog is gone: the first reads fail on the wire, the next hit the open breaker
        stale_product = await gateway.get("/api/products/7")
        from_page = await gateway.get("/api/products/2")
        stale_page = await gateway.get("/api/products", params={"limit": 3})
        assert app.state.catalog.breaker.state == "open"
        never_read = await gateway.get("/api/products/9")

    assert (stale_product.status_code, stale_product.headers["x-degraded"]) == (
        200,
        "catalog-stale",
    )
    assert "degraded" not in fresh_product.json()
    assert stale_product.json() == {**fresh_product.json(), "degraded": "catalog-stale"}
    assert from_page.status_code == 200  # kept from the page it came in
    assert from_page.json() == {**fresh_page.json()["items"][1], "degraded": "catalog-stale"}
    assert stale_page.headers["x-degraded"] == "catalog-stale"
    assert stale_page.json() == {**fresh_page.json(), "degraded": "catalog-stale"}
    assert fallbacks("gateway.read_product") == before[0] + 2
    assert fallbacks("gateway.list_products") == before[1] + 1
    # No copy, no fallback: the error of the call, here the open breaker's.
    assert never_read.status_code == 503
    assert never_read.json()["error"]["code"] == "circuit_open"
