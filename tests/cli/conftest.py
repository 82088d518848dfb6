"""Fixtures of the CLI's tests that use the shared native lab."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.auth import service_headers
from tests.support.lab import Lab

#: The demo products the lab seeds (inventory.store.DEMO_PRODUCT_IDS).
PRODUCTS = range(1, 13)


@pytest.fixture
def stock_restored(lab: Lab) -> Iterator[None]:
    """The lab's stock after the test as before it: orders placed by load take units."""
    inventory = f"http://127.0.0.1:{lab.settings.inventory_port}"
    headers = service_headers("inventory")  # inventory is internal: called as a service
    before = {
        p: httpx.get(f"{inventory}/stock/{p}", headers=headers).json()["available"]
        for p in PRODUCTS
    }
    yield
    headers = service_headers("inventory")  # a new one: a service token lives 60 s
    for product, available in before.items():
        body = {"available": available}
        httpx.put(f"{inventory}/stock/{product}", json=body, headers=headers).raise_for_status()
