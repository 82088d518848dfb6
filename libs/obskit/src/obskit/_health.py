"""``/health/live`` and ``/health/ready``.

Live says the process answers; an orchestrator restarts a process that stops
answering it. Ready says the service can do its work *now*: each of its own
dependencies (its database, Redis, the broker) answers a cheap check within a
timeout. Ready never checks other services, so one failing service does not make
every caller look unready too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

Check = Callable[[], Awaitable[object]]

router = APIRouter(prefix="/health", tags=["health"])


class HealthRead(BaseModel):
    status: str
    checks: dict[str, str] = {}


class Readiness:
    """The named checks that decide ``/health/ready``; the lifespan adds them."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self.checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def _run(self, check: Check) -> str:
        try:
            async with asyncio.timeout(self.timeout_s):
                await check()
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # a readiness probe reports every failure, whatever it is
            return f"error: {type(exc).__name__}"
        return "ok"

    async def run(self) -> dict[str, str]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        return dict(zip(names, results, strict=True))


@router.get("/live", response_model=HealthRead)
async def read_live() -> HealthRead:
    return HealthRead(status="ok")


@router.get("/ready", response_model=HealthRead, responses={503: {"model": HealthRead}})
async def read_ready(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.run()
    healthy = all(result == "ok" for result in checks.values())
    body = HealthRead(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
