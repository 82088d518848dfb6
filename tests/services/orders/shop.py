"""Helpers of the orders tests: request bodies, and reading what the services did."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from aio_pika.abc import AbstractQueue

from orders.settings import Settings

#: The products inventory stocks; each test starts with 10 units of every one.
DEMO_PRODUCT_IDS = range(1, 13)
CARD = {"number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
DECLINED_CARD = {"number": "4000000000000002", "expiry": "12/34", "cvc": "123"}


def order_body(*items: tuple[int, int, int], card: dict[str, str] = CARD) -> dict[str, Any]:
    """A POST /orders body from (product_id, quantity, unit_price_cents) lines."""
    lines = [{"product_id": p, "quantity": q, "unit_price_cents": c} for p, q, c in items]
    return {"items": lines, "card": card, "email": "ada@example.com"}


@dataclass
class Downstreams:
    """Inventory and payments as orders reaches them, with a client for each."""

    inventory_url: str
    payments_url: str
    inventory: httpx.AsyncClient
    payments: httpx.AsyncClient


def orders_settings(
    database_url: str, downstreams: Downstreams, amqp_url: str, **overrides: Any
) -> Settings:
    """Orders wired to the test's backends; the relay polls fast so tests wait little."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "inventory_url": downstreams.inventory_url,
        "payments_url": downstreams.payments_url,
        "amqp_url": amqp_url,
        "outbox_poll_interval_s": 0.05,
        **overrides,
    }
    return Settings(**values)


async def stock(downstreams: Downstreams, product_id: int) -> int:
    response = await downstreams.inventory.get(f"/stock/{product_id}")
    assert response.status_code == 200
    return int(response.json()["available"])


async def fetch(database_url: str, query: str) -> list[asyncpg.Record]:
    """The rows ``query`` returns from the orders' own database."""
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(query))
    finally:
        await connection.close()


async def wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, within_s: float = 15.0
) -> None:
    """Poll ``condition`` until it is true; fail after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not true after {within_s}s")
        await asyncio.sleep(0.05)


async def next_event(queue: AbstractQueue, within_s: float = 15.0) -> dict[str, Any]:
    """The next event on ``queue``, decoded, with its AMQP properties under ``"_message"``."""
    deadline = time.monotonic() + within_s
    while (message := await queue.get(fail=False, no_ack=True)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no event on the queue after {within_s}s")
        await asyncio.sleep(0.05)
    return {**json.loads(message.body), "_message": message}
