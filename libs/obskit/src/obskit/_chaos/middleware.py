"""Where the HTTP faults act: an ASGI middleware in front of the service's routes.

The admin, health and metrics routes are never faulted: the switch to end an
experiment and the probes that watch it keep working.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from obskit._chaos.model import HTTP_KINDS
from obskit._chaos.process import Chaos, request_path
from obskit._errors import error_response

#: Paths no fault touches: the chaos switch itself and what watches the service.
EXEMPT_PREFIXES = ("/admin/", "/health/", "/metrics")


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class ChaosMiddleware:
    """Applies the HTTP faults (latency, error, abort, cpu, memory_leak) to requests."""

    def __init__(self, app: ASGIApp, *, chaos: Chaos) -> None:
        self.app = app
        self.chaos = chaos

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        # For the dependency faults limited to a route: the hooks of _db.py and _redis.py
        # run deeper in this request's task, where they read it.
        token = request_path.set(scope["path"])
        try:
            await self._serve(scope, receive, send)
        finally:
            request_path.reset(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.chaos.has(HTTP_KINDS):
            await self.app(scope, receive, send)
            return
        # A fault's route is a template (/charges/{order_id}); it is matched against the
        # path here, since the router has not picked the route yet.
        path: str = scope["path"]
        if fault := self.chaos.pick("memory_leak", path=path):
            self.chaos.leak(fault)
        if fault := self.chaos.pick("cpu", path=path):
            _burn(fault.delay_s())
        if fault := self.chaos.pick("latency", path=path):
            await asyncio.sleep(fault.delay_s())
        if fault := self.chaos.pick("abort", path=path):
            # Headers that promise a body, then nothing: the server closes the
            # connection and the caller sees it drop mid-answer.
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-length", b"64")],
                }
            )
            return
        if fault := self.chaos.pick("error", path=path):
            response = error_response(
                fault.status,
                "chaos_injected",
                f"A {fault.status} injected by chaos (fault {fault.id}).",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
