"""The gateway: the shop's public API, in front of catalog and orders.

It is stateless (no database, no shared cache: only an in-process fallback copy
of product reads, see :mod:`gateway.fallback`), so any number of replicas can
run behind the load balancer. ``create_app`` builds the app; its lifespan owns one
HTTP client per downstream service and closes them (and flushes telemetry) on
shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import obskit
from gateway import auth
from gateway.api import router
from gateway.fallback import LastKnownGood
from gateway.ratelimit import RateLimitHeadersMiddleware, RateLimits, rate_limit
from gateway.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    rate_limits = RateLimits(settings) if settings.rate_limit_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = obskit.ServiceClient("catalog", settings.catalog_url, settings)
        orders = obskit.ServiceClient("orders", settings.orders_url, settings)
        app.state.catalog = catalog
        app.state.orders = orders
        app.state.stale_products = LastKnownGood(
            settings.stale_products_max_entries, settings.stale_products_max_age_s
        )
        if rate_limits is not None:
            await rate_limits.start()
        # No readiness checks: ready never checks other services, and the gateway's
        # only dependency of its own, Redis for the rate limits, fails open.
        try:
            yield
        finally:
            await catalog.aclose()
            await orders.aclose()
            if rate_limits is not None:
                await rate_limits.aclose()
            obskit.flush_telemetry()

    app = FastAPI(
        title="obslab gateway",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=obskit.fastapi_telemetry(settings),
    )
    app.state.rate_limits = rate_limits
    app.add_middleware(RateLimitHeadersMiddleware)
    obskit.instrument_service(app, settings)
    # Every public route is rate limited (the check runs before the token's).
    for routes in (auth.router, router):
        app.include_router(
            routes,
            dependencies=[Depends(rate_limit)],
            responses={429: {"model": obskit.ErrorBody}},
        )
    return app
