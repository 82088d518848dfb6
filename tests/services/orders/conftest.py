"""The orders' world in tests: real inventory and payments on ports, a broker vhost, a queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractQueue

import obskit
from inventory.main import create_app as create_inventory
from inventory.settings import Settings as InventorySettings
from orders.main import create_app as create_orders
from orders.settings import Settings
from payments.main import create_app as create_payments
from payments.settings import Settings as PaymentsSettings
from tests.services.orders.shop import DEMO_PRODUCT_IDS, Downstreams, orders_settings
from tests.support.apps import serve_in_process, serve_on_port
from tests.support.auth import service_headers
from tests.support.backends import Backends, free_port


@pytest.fixture(scope="module")
async def running_downstreams(backends: Backends) -> AsyncIterator[Downstreams]:
    """Inventory and payments on real ports, each with its own database, for a whole module.

    Starting them (and creating their databases) takes seconds, so the tests share
    them; ``downstreams`` resets what a test could have changed.
    """
    name = f"obslab_test_{uuid.uuid4().hex[:12]}"
    inventory_db = f"{backends.postgres_url}/{name}_inventory"
    payments_db = f"{backends.postgres_url}/{name}_payments"
    inventory_app = create_inventory(InventorySettings(database_url=inventory_db))
    payments_app = create_payments(PaymentsSettings(database_url=payments_db, bank_latency_ms=0))
    try:
        async with (
            serve_on_port(inventory_app) as inventory_url,
            serve_on_port(payments_app) as payments_url,
            httpx.AsyncClient(
                base_url=inventory_url, headers=service_headers("inventory")
            ) as inventory,
            httpx.AsyncClient(
                base_url=payments_url, headers=service_headers("payments")
            ) as payments,
        ):
            yield Downstreams(inventory_url, payments_url, inventory, payments)
    finally:
        connection = await asyncpg.connect(f"{backends.postgres_url}/postgres")
        try:
            for database in (f"{name}_inventory", f"{name}_payments"):
                await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await connection.close()


@pytest.fixture
async def downstreams(running_downstreams: Downstreams) -> Downstreams:
    """The shared inventory and payments, with each demo product's stock back at 10 units.

    Charges need no reset: payments keys them by order id, and every test's are new.
    """
    for product_id in DEMO_PRODUCT_IDS:
        response = await running_downstreams.inventory.put(
            f"/stock/{product_id}", json={"available": 10}
        )
        assert response.status_code == 200
    return running_downstreams


@pytest.fixture
async def events(amqp_url: str) -> AsyncIterator[AbstractQueue]:
    """A queue of this test's own, bound to every order event on ``obslab.events``."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange, _ = await obskit.declare_exchanges(channel)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="order.*")
        yield queue


@pytest.fixture
async def orders(
    database_url: str, downstreams: Downstreams, amqp_url: str, events: AbstractQueue
) -> AsyncIterator[httpx.AsyncClient]:
    """The orders service in process, calling the real inventory and payments."""
    app = create_orders(orders_settings(database_url, downstreams, amqp_url))
    async with serve_in_process(app) as client:
        yield client


@pytest.fixture(scope="module")
async def orders_alone(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    """Orders on SQLite with nobody to call: enough for what it refuses before any call.

    Shared by a module's tests, which only send what is refused or read what is absent.
    """
    nowhere = f"127.0.0.1:{free_port()}"
    settings = Settings(
        data_dir=str(tmp_path_factory.mktemp("orders")),
        inventory_url=f"http://{nowhere}",
        payments_url=f"http://{nowhere}",
        amqp_url=f"amqp://guest:guest@{nowhere}/",
    )
    async with serve_in_process(create_orders(settings)) as client:
        yield client
