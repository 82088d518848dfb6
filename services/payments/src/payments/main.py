"""The payments service: charges against a simulated bank, once per order.

``create_app`` builds the app; its lifespan owns the database engine and the
simulated bank, and disposes of the engine (and flushes telemetry) on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import obskit
from payments.api import router
from payments.bank import SimulatedBank
from payments.settings import Settings
from payments.store import Base


async def migrate(settings: Settings) -> None:
    """Create the payments database and tables."""
    async with obskit.open_database(settings, settings.service_name, Base.metadata):
        pass


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with obskit.open_database(settings, settings.service_name, Base.metadata) as engine:
            app.state.sessions = obskit.sessionmaker(engine)
            app.state.bank = SimulatedBank(settings)
            app.state.readiness.add("database", lambda: obskit.ping_database(engine))
            try:
                yield
            finally:
                obskit.flush_telemetry()

    app = FastAPI(
        title="obslab payments",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=obskit.fastapi_telemetry(settings),
    )
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
