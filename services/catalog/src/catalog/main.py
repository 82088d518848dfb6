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


async def migrate(settings: Settings) -> None:
    """Create the catalog's database and tables, and seed the demo products."""
    engine = await obskit.create_engine(settings, settings.service_name)
    try:
        await obskit.create_tables(engine, Base.metadata)
        if settings.seed_demo_data:
            async with obskit.sessionmaker(engine)() as session:
                await seed_demo_products(session)
    finally:
        await obskit.dispose_engine(engine)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings)
        engine = await obskit.create_engine(settings, settings.service_name)
        redis = obskit.create_redis(settings)
        app.state.sessions = obskit.sessionmaker(engine)
        app.state.redis = redis
        app.state.readiness.add("database", lambda: obskit.ping_database(engine))
        app.state.readiness.add("redis", redis.ping)
        try:
            yield
        finally:
            await obskit.close_redis(redis)
            await obskit.dispose_engine(engine)
            obskit.flush_telemetry()

    app = FastAPI(title="obslab catalog", version="0.1.0", lifespan=lifespan)
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
