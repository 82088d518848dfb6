"""The inventory service: stock levels, and reservations that never oversell.

``create_app`` builds the app; its lifespan owns the database engine and disposes
of it (and flushes telemetry) on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import obskit
from inventory.api import router
from inventory.settings import Settings
from inventory.store import Base, seed_stock


async def migrate(settings: Settings) -> None:
    """Create the inventory's database and tables, and stock the demo products."""
    engine = await obskit.create_engine(settings, settings.service_name)
    try:
        await obskit.create_tables(engine, Base.metadata)
        async with obskit.sessionmaker(engine)() as session:
            await seed_stock(session, settings.seed_stock)
    finally:
        await obskit.dispose_engine(engine)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings)
        engine = await obskit.create_engine(settings, settings.service_name)
        app.state.sessions = obskit.sessionmaker(engine)
        app.state.readiness.add("database", lambda: obskit.ping_database(engine))
        try:
            yield
        finally:
            await obskit.dispose_engine(engine)
            obskit.flush_telemetry()

    app = FastAPI(title="obslab inventory", version="0.1.0", lifespan=lifespan)
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
