"""The inventory service: stock levels, and reservations that never oversell.

``create_app`` builds the app; its lifespan owns the database engine and disposes
of it (and flushes telemetry) on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

import obskit
from inventory.api import router
from inventory.settings import Settings
from inventory.store import Base, seed_stock


def open_database(settings: Settings) -> obskit.DatabaseContext:
    """The inventory's database, its tables made and the demo products stocked."""

    async def seed(session: AsyncSession) -> None:
        await seed_stock(session, settings.seed_stock)

    return obskit.open_database(settings, settings.service_name, Base.metadata, seed)


async def migrate(settings: Settings) -> None:
    async with open_database(settings):
        pass


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_database(settings) as engine:
            app.state.sessions = obskit.sessionmaker(engine)
            app.state.readiness.add("database", lambda: obskit.ping_database(engine))
            try:
                yield
            finally:
                obskit.flush_telemetry()

    app = FastAPI(
        title="obslab inventory",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=obskit.fastapi_telemetry(settings),
    )
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
