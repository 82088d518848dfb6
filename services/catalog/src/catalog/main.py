"""The catalog service: products, read through a Redis cache.

``create_app`` builds the app; its lifespan owns the database engine and the
Redis client and closes them (and flushes telemetry) on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import obskit
from catalog.api import router
from catalog.settings import Settings
from catalog.store import Base, seed_demo_products


def open_database(settings: Settings) -> obskit.DatabaseContext:
    """The catalog's database, its tables made and, when asked, the demo products in."""
    seed = seed_demo_products if settings.seed_demo_data else None
    return obskit.open_database(settings, settings.service_name, Base.metadata, seed)


async def migrate(settings: Settings) -> None:
    async with open_database(settings):
        pass


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_database(settings) as engine:
            redis = obskit.create_redis(settings)
            app.state.sessions = obskit.sessionmaker(engine)
            app.state.redis = redis
            app.state.readiness.add("database", lambda: obskit.ping_database(engine))
            # The cache is an optimisation: without it products come from PostgreSQL.
            app.state.readiness.add("redis", redis.ping, critical=False)
            try:
                yield
            finally:
                await obskit.close_redis(redis)
                obskit.flush_telemetry()

    app = FastAPI(
        title="obslab catalog",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=obskit.fastapi_telemetry(settings),
    )
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
