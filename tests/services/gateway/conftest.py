"""The gateway's fixtures: the real services behind it, or an address where nothing listens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

from catalog.main import create_app as create_catalog
from catalog.settings import Settings as CatalogSettings
from gateway.main import create_app
from gateway.settings import Settings
from inventory.main import create_app as create_inventory
from inventory.settings import Settings as InventorySettings
from orders.main import create_app as create_orders
from orders.settings import Settings as OrdersSettings
from payments.main import create_app as create_payments
from payments.settings import Settings as PaymentsSettings
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.auth import minted_headers
from tests.support.backends import Backends, free_port


@pytest.fixture
def nowhere() -> str:
    """A local URL where nothing listens: calls to it fail at once, as to a service that is down."""
    return f"http://127.0.0.1:{free_port()}"


# The services behind the gateway take seconds to start (databases to create, a broker
# vhost to add), so each test module shares one set; its tests never depend on each
# other's orders (each uses its own products or keys).


@pytest.fixture(scope="module")
async def new_database(backends: Backends) -> AsyncIterator[Callable[[], str]]:
    """Make URLs of fresh PostgreSQL databases (a service creates its own on startup); drop them."""
    names: list[str] = []

    def new() -> str:
        names.append(f"obslab_test_{uuid.uuid4().hex[:12]}")
        return f"{backends.postgres_url}/{names[-1]}"

    yield new
    connection = await asyncpg.connect(f"{backends.postgres_url}/postgres")
    try:
        for name in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def catalog_url(backends: Backends, new_database: Callable[[], str]) -> AsyncIterator[str]:
    """A real catalog (PostgreSQL, Redis) on a port, seeded with the twelve demo products."""
    # Redis database 15 is the tests' (other tests flush it: for a cache, only misses).
    redis_url = f"{backends.redis_url}/15"
    settings = CatalogSettings(database_url=new_database(), redis_url=redis_url)
    async with serve_on_port(create_catalog(settings)) as url:
        yield url


@pytest.fixture(scope="module")
async def orders_url(backends: Backends, new_database: Callable[[], str]) -> AsyncIterator[str]:
    """Real orders, inventory (100 of each demo product) and payments, each on a port."""
    inventory = InventorySettings(database_url=new_database(), seed_stock=100)
    # A fast bank that never fails: these tests are about the gateway, not the bank.
    payments = PaymentsSettings(
        database_url=new_database(), bank_latency_ms=1, bank_failure_rate=0, random_seed=1
    )
    amqp_url = backends.new_vhost()
    try:
        async with (
            serve_on_port(create_inventory(inventory)) as inventory_url,
            serve_on_port(create_payments(payments)) as payments_url,
        ):
            orders = OrdersSettings(
                database_url=new_database(),
                amqp_url=amqp_url,
                inventory_url=inventory_url,
                payments_url=payments_url,
            )
            async with serve_on_port(create_orders(orders)) as url:
                yield url
    finally:
        backends.drop_vhost(amqp_url)


@pytest.fixture
async def gateway(catalog_url: str, nowhere: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in front of the real catalog, with orders down: no order can be placed."""
    settings = Settings(catalog_url=catalog_url, orders_url=nowhere)
    async with serve_in_process(create_app(settings)) as client:
        client.headers.update(minted_headers(settings))  # a client allowed to order
        yield client


@pytest.fixture
async def shop(catalog_url: str, orders_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in front of the whole chain: catalog, orders, inventory and payments."""
    settings = Settings(catalog_url=catalog_url, orders_url=orders_url)
    async with serve_in_process(create_app(settings)) as client:
        client.headers.update(minted_headers(settings))
        yield client


@pytest.fixture
async def offline_gateway(nowhere: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with every service it calls down: what it answers on its own."""
    settings = Settings(catalog_url=nowhere, orders_url=nowhere)
    async with serve_in_process(create_app(settings)) as client:
        client.headers.update(minted_headers(settings))
        yield client
