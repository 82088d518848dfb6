"""A second database and Redis, for tests that run the same requests in two places
(a service as a container and as a function) and compare the answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support.backends import Backends


@pytest.fixture
async def twin_database_url(backends: Backends) -> AsyncIterator[str]:
    """Another PostgreSQL database of this test's own, dropped afterwards."""
    name = f"obslab_test_{uuid.uuid4().hex[:12]}"
    yield f"{backends.postgres_url}/{name}"
    connection = await asyncpg.connect(f"{backends.postgres_url}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
async def twin_redis_url(backends: Backends) -> AsyncIterator[str]:
    """Redis database 13, emptied first: apart from the lab's 0, bench's 14 and tests' 15."""
    url = f"{backends.redis_url}/13"
    client = Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url
