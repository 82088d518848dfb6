"""``/health/live`` and ``/health/ready``.

Live says the process answers; an orchestrator restarts a process that stops
answering it. Ready says the service can do its work *now*: each of its own
dependencies (its database, Redis, the broker) answers a cheap check within a
timeout. Ready never checks other services, so one failing service does not make
every caller look unready too.

A check may be marked not critical: a cache the service degrades without. Its
failure shows in the answer (``"status": "degraded"``) but keeps the answer 200, so
an orchestrator or a load balancer does not take away a replica that still serves.
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
        self.optional: set[str] = set()

    def add(self, name: str, check: Check, *, critical: bool = True) -> None:
        self.checks[name] = check
        if not critical:
            self.optional.add(name)

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
    failed = {name for name, result in checks.items() if result != "ok"}
    if failed - readiness.optional:
        status, code = "unavailable", 503
    else:
        status, code = ("degraded" if failed else "ok"), 200
    body = HealthRead(status=status, checks=checks)
    return JSONResponse(body.model_dump(), status_code=code)
