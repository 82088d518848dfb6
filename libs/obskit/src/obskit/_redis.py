"""The Redis client of a service: one bounded pool, traced, its use exported.

``BlockingConnectionPool`` waits at most ``redis_timeout_s`` for a free connection
and then fails, instead of opening connections without limit under load.
"""

from __future__ import annotations

from opentelemetry.instrumentation.redis import RedisInstrumentor
from redis.asyncio import BlockingConnectionPool, Redis

from obskit import _telemetry
from obskit._metrics import POOLS
from obskit._settings import RedisSettings


def create_redis(settings: RedisSettings) -> Redis:
    """Create the service's Redis client; close it with :func:`close_redis`."""
    if _telemetry.enabled:
        RedisInstrumentor().instrument()  # once per process; later calls do nothing
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
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
