"""The gateway: the shop's public API, in front of catalog and orders.

It is stateless (no database, no cache), so any number of replicas can run
behind the load balancer. ``create_app`` builds the app; its lifespan owns one
HTTP client per downstream service and closes them (and flushes telemetry) on
shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import obskit
from gateway.api import router
from gateway.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = obskit.ServiceClient("catalog", settings.catalog_url, settings)
        orders = obskit.ServiceClient("orders", settings.orders_url, settings)
        app.state.catalog = catalog
        app.state.orders = orders
        # No readiness checks: ready never checks other services, and the gateway
        # has no dependency of its own, so a gateway that answers is ready.
        try:
            yield
        finally:
            await catalog.aclose()
            await orders.aclose()
            obskit.flush_telemetry()

    app = FastAPI(title="obslab gateway", version="0.1.0", lifespan=lifespan)
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
