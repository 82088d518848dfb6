"""Run service apps inside the test process, with their lifespans, for integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.support.auth import service_headers
from tests.support.backends import free_port


@asynccontextmanager
async def serve_in_process(
    app: FastAPI, *, identity: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``'s lifespan and yield a client that calls it without a socket.

    The client calls as a service would, with a service token for the app (when the
    app asks for one: every service but the gateway); ``identity=False`` sends none.
    """
    settings = getattr(app.state, "settings", None)
    headers = {}
    if identity and settings is not None and settings.require_service_token:
        headers = service_headers(settings.service_name, settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            yield client


@asynccontextmanager
async def serve_on_port(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free local port in this event loop; yield its URL.

    For a service that another service under test calls over real HTTP (so the
    caller's client, its trace headers and its error mapping are all exercised).
    """
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if task.done():
                    task.result()  # startup failed: raise its error here
                    raise RuntimeError("the server stopped while starting")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
