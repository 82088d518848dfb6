"""The Redis client of a service: one bounded pool, traced, its use exported.

``BlockingConnectionPool`` waits at most ``redis_timeout_s`` for a free connection
and then fails, instead of opening connections without limit under load. The pool
also applies the service's Redis faults (``obslab chaos inject catalog
dependency_outage --dependency redis``): every command and pipeline borrows a
connection from it, so that one place slows or breaks them all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.instrumentation.redis import RedisInstrumentor
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from obskit import _chaos, _telemetry
from obskit._metrics import POOLS
from obskit._settings import RedisSettings, ServiceSettings


class _FaultyPool(BlockingConnectionPool):
    """A bounded pool that applies the service's Redis faults before lending a connection."""

    service = ""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        fault = _chaos.dependency_fault(self.service, "redis")
        if fault is not None and fault.kind == "dependency_outage":
            raise RedisConnectionError("redis unavailable (injected by chaos)")
        if fault is not None:
            await asyncio.sleep(fault.delay_s())
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


def create_redis(settings: RedisSettings) -> Redis:
    """Create the service's Redis client; close it with :func:`close_redis`."""
    if _telemetry.enabled:
        RedisInstrumentor().instrument()  # once per process; later calls do nothing
    pool = _FaultyPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    if isinstance(settings, ServiceSettings):
        pool.service = settings.service_name
    client = Redis(connection_pool=pool)

    def reading() -> tuple[int, int, int]:
        counts = {
            attrs.get("db.client.connection.state"): n for n, attrs in pool.get_connection_count()
        }
        return counts.get("used", 0), counts.get("idle", 0), settings.redis_max_connections

    client._obskit_unwatch = POOLS.watch("redis", reading)  # type: ignore[attr-defined]
    return client


async def close_redis(client: Redis) -> None:
    client._obskit_unwatch()  # type: ignore[attr-defined]
    await client.aclose()
