"""The orders service: checkout across inventory and payments, events through an outbox.

``create_app`` builds the app; its lifespan owns the database engine, one HTTP
client per downstream service, the outbox relay task and the checkout's recovery
task, and stops or closes them all (and flushes telemetry) on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import obskit
from orders.api import router
from orders.outbox import BROKER_TIMEOUT_S, OutboxRelay
from orders.recovery import Recovery
from orders.settings import Settings
from orders.store import Base


async def migrate(settings: Settings) -> None:
    """Create the orders' database and tables."""
    async with obskit.open_database(settings, settings.service_name, Base.metadata):
        pass


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with obskit.open_database(settings, settings.service_name, Base.metadata) as engine:
            app.state.sessions = obskit.sessionmaker(engine)
            app.state.inventory = obskit.ServiceClient(
                "inventory", settings.inventory_url, settings
            )
            app.state.payments = obskit.ServiceClient("payments", settings.payments_url, settings)
            # Ready means "can take orders", which needs the database only. The broker is
            # left out on purpose: while it is down, orders are still accepted and their
            # events wait in the outbox, so taking orders out of the load balancer then
            # would refuse customers for nothing.
            app.state.readiness.add("database", lambda: obskit.ping_database(engine))
            # The relay connects to the broker itself, when it can: startup never waits.
            relay = OutboxRelay(app.state.sessions, settings)
            relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
            recovery = app.state.recovery = Recovery(
                app.state.sessions, app.state.inventory, app.state.payments, settings
            )
            recovery_task = asyncio.create_task(recovery.run(), name="checkout-recovery")
            try:
                yield
            finally:
                # A job a pass was doing stays leased and runs again after its lease:
                # cancelling the pass loses nothing.
                recovery.stop()
                recovery_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recovery_task
                # Let the relay end the pass it is in, so what the broker confirmed is
                # marked published (not sent again by the next process); cancel it if
                # that hangs.
                relay.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(relay_task, timeout=BROKER_TIMEOUT_S)
                await relay.close()
                await app.state.payments.aclose()
                await app.state.inventory.aclose()
                obskit.flush_telemetry()

    app = FastAPI(
        title="obslab orders",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=obskit.fastapi_telemetry(settings),
    )
    obskit.instrument_service(app, settings)
    app.include_router(router)
    return app
