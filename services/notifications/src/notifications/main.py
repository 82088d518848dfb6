"""The notifications worker: consumes order events, sends emails, tells orders.

It is a FastAPI app like every service (health, metrics, OpenAPI, and a small read
API), whose lifespan runs the broker consumer next to the database engine and the
orders client, and stops it first on shutdown so that messages in hand finish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import obskit
from notifications.api import router
from notifications.consumer import EventConsumer
from notifications.settings import Settings
from notifications.store import Base


async def migrate(settings: Settings) -> None:
    """Create the worker's database and tables."""
    async with obskit.open_database(settings, settings.service_name, Base.metadata):
        pass


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with obskit.open_database(settings, settings.service_name, Base.metadata) as engine:
            orders = obskit.ServiceClient("orders", settings.orders_url, settings)
            app.state.sessions = obskit.sessionmaker(engine)
            consumer = EventConsumer(settings, app.state.sessions, orders)
            app.state.consumer = consumer
            app.state.readiness.add("database", lambda: obskit.ping_database(engine))
            app.state.readiness.add("broker", consumer.check)
            consumer.start()
            try:
                yield
            finally:
                await consumer.stop()
                await orders.aclose()
                obskit.flush_telemetry()

    app = FastAPI(
        title="obslab notifications",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=obskit.fastapi_telemetry(settings),
    )
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
