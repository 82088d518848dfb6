"""catalog with a Redis that accepts connections and never answers: a cache outage, not a hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from catalog.main import create_app
from catalog.settings import Settings
from tests.support.apps import serve_in_process


@pytest.fixture
async def frozen_redis() -> AsyncIterator[str]:
    """A TCP server that takes connections and never says a word, as a frozen Redis does."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"redis://127.0.0.1:{port}/0"
        for writer in held:
            writer.close()


async def test_catalog_answers_from_the_database_when_redis_is_frozen(
    tmp_path: Path, frozen_redis: str
) -> None:
    """Each cache call gives up after redis_timeout_s, so products are still served and
    the service stays ready, degraded."""
    settings = Settings(data_dir=str(tmp_path), redis_url=frozen_redis, redis_timeout_s=0.2)
    async with serve_in_process(create_app(settings)) as catalog:
        product = await catalog.get("/products/1")
        page = await catalog.get("/products", params={"limit": 2})
        ready = await catalog.get("/health/ready")
    assert product.status_code == 200
    assert [p["id"] for p in page.json()["items"]] == [1, 2]
    # Still ready: a replica that serves from the database is not taken out of rotation.
    assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
    assert ready.json()["checks"]["redis"] != "ok"
