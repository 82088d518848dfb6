"""Fault injection inside every service, shared by its replicas through Redis.

=================  ========================================================
``model.py``       the kinds of fault, their parameters and caps
``store.py``       the faults of a service in Redis (:class:`FaultStore`)
``process.py``     the faults one process applies, refreshed every second
``middleware.py``  where the HTTP faults act
``admin.py``       the admin API that adds, lists and clears faults
=================  ========================================================

A dependency fault with a route hits only the queries and Redis calls made while
serving a path of it, so one endpoint's database can be slow while the others' is
not (and a worker's calls, outside any request, are never hit by it); the hooks of
``_db.py`` and ``_redis.py`` ask :func:`dependency_fault`. The notifications consumer
calls :func:`worker_faults` before each message. Chaos is on only where an admin
token is configured (``OBSLAB_ADMIN_TOKEN``): without one there is no admin API, no
poll and no fault.

What a fault does is visible: ``obslab_chaos_active{service,fault}`` is 1 while a
fault of that kind is active, a request a fault hit carries a ``chaos.injected`` span
event, and each fault logs ``chaos.injected`` the first time it hits in a process (not
once per request, which would flood the logs under load).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from obskit._chaos.admin import admin_router
from obskit._chaos.middleware import ChaosMiddleware
from obskit._chaos.model import Fault, FaultCreate
from obskit._chaos.process import Chaos, dependency_fault, worker_faults
from obskit._settings import ServiceSettings


def install_chaos(app: FastAPI, settings: ServiceSettings) -> None:
    """Add the admin API and, when an admin token is configured, fault injection."""
    app.include_router(admin_router)
    if settings.admin_token is None:
        return
    chaos = Chaos(settings.service_name, settings.redis_url, settings.chaos_refresh_s)
    app.state.chaos = chaos
    app.add_middleware(ChaosMiddleware, chaos=chaos)
    app.router.lifespan_context = _with_chaos(app.router.lifespan_context, chaos)


def _with_chaos(
    lifespan: Callable[[Any], AbstractAsyncContextManager[Any]], chaos: Chaos
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """The app's lifespan inside one that reads the faults first and stops reading last."""

    @asynccontextmanager
    async def with_chaos(app: Any) -> AsyncIterator[Any]:
        await chaos.start()
        try:
            async with lifespan(app) as state:
                yield state
        finally:
            await chaos.stop()

    return with_chaos


__all__ = ["Fault", "FaultCreate", "dependency_fault", "install_chaos", "worker_faults"]
