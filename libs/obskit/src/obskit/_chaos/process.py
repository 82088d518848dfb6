"""The faults one process applies, and where the database, Redis and worker hooks
find them.

Each process reads its service's faults from the store every ``chaos_refresh_s``
(1 s). Polling rather than pub/sub: a poll notices expiry and a Redis restart by
itself, costs one ``HGETALL`` a second, and a message missed while a replica
restarts cannot leave it broken. While Redis cannot be read the process has no
faults: chaos never becomes an outage of its own.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from contextvars import ContextVar
from typing import Any

import structlog
from opentelemetry import trace
from prometheus_client import Gauge
from starlette.routing import compile_path

from obskit._chaos.model import DEPENDENCY_KINDS, KINDS, Fault
from obskit._chaos.store import FaultStore

# redis is imported only where chaos is turned on, and SQLAlchemy not at all here
# (the database and Redis hooks live in _db.py and _redis.py): a service without an
# admin token, or without a database, does not pay for loading them.

log = structlog.get_logger("obskit.chaos")

CHAOS_ACTIVE = Gauge(
    "obslab_chaos_active",
    "1 while a fault of this kind is injected into this service (obslab chaos list).",
    ["service", "fault"],
)


class Chaos:
    """The faults this process applies, refreshed from Redis in the background."""

    def __init__(self, service: str, redis_url: str, refresh_s: float = 1.0) -> None:
        self.service = service
        self.redis_url = redis_url
        self.refresh_s = refresh_s
        self.faults: list[Fault] = []
        self._store: FaultStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._reported: set[str] = set()  # faults whose first hit was logged
        self._store_down = False
        self._leaked: list[bytes] = []
        for kind in KINDS:  # every series exists at 0, so "no fault" is a value, not a gap
            CHAOS_ACTIVE.labels(service, kind).set(0)

    @property
    def store(self) -> FaultStore:
        """The service's fault store, from :meth:`start` to :meth:`stop`."""
        if self._store is None:
            raise RuntimeError("chaos is not started: the app's lifespan starts it")
        return self._store

    async def start(self) -> None:
        from redis.asyncio import Redis

        redis = Redis.from_url(
            self.redis_url, max_connections=4, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._store = FaultStore(redis, self.service)
        _CHAOS[self.service] = self
        self._stopping.clear()
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="chaos.refresh")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            # Told, not cancelled: a cancellation that lands inside a Redis call can be
            # swallowed by the client's own timeout handling and leave the loop running.
            with suppress(TimeoutError):
                await asyncio.wait_for(self._task, timeout=5)
        if self._store is not None:
            await self._store.redis.aclose()
        self._apply([])
        if _CHAOS.get(self.service) is self:
            del _CHAOS[self.service]

    async def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.refresh_s)
            except TimeoutError:
                try:
                    await self.refresh()
                except Exception:  # a bug must not freeze the faults in place: drop them
                    log.exception("chaos.refresh_failed")
                    self._apply([])

    async def refresh(self) -> None:
        """Read the service's faults now; no faults at all while Redis cannot be read."""
        from opentelemetry.instrumentation.utils import suppress_instrumentation
        from redis.exceptions import RedisError

        try:
            # One read a second would be one trace a second: not worth tracing.
            with suppress_instrumentation():
                faults = await self.store.active()
        except (RedisError, OSError) as exc:
            if not self._store_down:
                log.warning("chaos.store_unavailable", error=type(exc).__name__)
            self._store_down = True
            faults = []
        else:
            if self._store_down:
                log.info("chaos.store_available")
            self._store_down = False
        self._apply(faults)

    def _apply(self, faults: list[Fault]) -> None:
        before = {f.id for f in self.faults}
        after = {f.id for f in faults}
        for fault in faults:
            if fault.id not in before:
                log.warning("chaos.activated", **_describe(fault))
        for fault in self.faults:
            if fault.id not in after:
                log.info("chaos.deactivated", fault_id=fault.id, fault=fault.kind)
                self._reported.discard(fault.id)
        self.faults = faults
        for kind in KINDS:
            CHAOS_ACTIVE.labels(self.service, kind).set(any(f.kind == kind for f in faults))
        if not any(f.kind == "memory_leak" for f in faults):
            self._leaked.clear()  # the leak ends with its fault

    def pick(
        self, kind: str, *, path: str | None = None, dependency: str | None = None
    ) -> Fault | None:
        """The first active fault of ``kind`` for this path (a worker's: the message's
        event type) or dependency that hits now."""
        now = time.time()
        for fault in self.faults:
            if (
                fault.kind == kind
                and fault.expires_at > now
                and (fault.route is None or (path is not None and _matches(fault.route, path)))
                and (dependency is None or fault.dependency == dependency)
                and fault.hits()
            ):
                self.injected(fault)
                return fault
        return None

    def injected(self, fault: Fault) -> None:
        """Mark the current span, and log the fault's first hit in this process."""
        span = trace.get_current_span()
        span.add_event("chaos.injected", {"chaos.fault": fault.kind, "chaos.fault_id": fault.id})
        span.set_attribute("chaos.fault", fault.kind)
        if fault.id not in self._reported:
            self._reported.add(fault.id)
            log.warning("chaos.injected", **_describe(fault))

    def has(self, kinds: frozenset[str]) -> bool:
        return any(f.kind in kinds for f in self.faults)

    def leak(self, fault: Fault) -> None:
        if len(self._leaked) * fault.kb < fault.cap_mb * 1024:
            # Filled, not just reserved, so the pages count in the process's RSS.
            self._leaked.append(b"\xa5" * (fault.kb * 1024))


@functools.cache
def _route_regex(route: str) -> re.Pattern[str]:
    regex, _, _ = compile_path(route)  # what the router itself matches a template with
    return regex


def _matches(route: str, path: str) -> bool:
    """Whether ``path`` is one of the paths of the route template ``route`` (or, for a
    worker fault, the message's event type is ``route``)."""
    if not route.startswith("/"):
        return path == route
    return _route_regex(route).match(path) is not None


def _describe(fault: Fault) -> dict[str, Any]:
    fields = fault.model_dump(exclude={"id", "service", "created_at"}, exclude_defaults=True)
    return {"fault_id": fault.id, "fault": fault.kind, **fields}


#: The chaos of each service in this process, by service name: the database and Redis
#: hooks find theirs here (a test process may run several services).
_CHAOS: dict[str, Chaos] = {}
#: The path of the request being served (``None`` outside a request: a worker's call).
#: The middleware sets it, for the dependency faults limited to a route.
request_path: ContextVar[str | None] = ContextVar("obskit_chaos_path", default=None)


def dependency_fault(service: str, dependency: str) -> Fault | None:
    """The fault ``service`` should suffer before a call to ``dependency`` (an outage
    before a slowdown), if any; the database and Redis hooks act on it."""
    chaos = _CHAOS.get(service)
    if chaos is None or not chaos.has(DEPENDENCY_KINDS):
        return None
    path = request_path.get()
    return chaos.pick("dependency_outage", path=path, dependency=dependency) or chaos.pick(
        "slow_dependency", path=path, dependency=dependency
    )


def _exit_process() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(70)  # EX_SOFTWARE; no cleanup, as in a real crash


#: What ``worker_crash`` does; tests replace it (exiting would end the test run).
crash: Callable[[], None] = _exit_process


async def worker_faults(service: str, event_type: str | None = None) -> None:
    """Apply ``service``'s worker faults before a message of ``event_type`` (its
    routing key) is handled; the consumer calls it."""
    chaos = _CHAOS.get(service)
    if chaos is None:
        return
    if chaos.pick("worker_crash", path=event_type):
        log.error("chaos.crash", service=service)
        crash()
    if fault := chaos.pick("worker_slowdown", path=event_type):
        await asyncio.sleep(fault.delay_s())
