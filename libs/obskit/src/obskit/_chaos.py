"""Fault injection inside every service, shared by its replicas through Redis.

A fault is a JSON document in the Redis hash ``obslab:chaos:<service>``, so every
replica of a service applies the same faults and the services stay stateless. Each
process reads its service's faults every ``chaos_refresh_s`` (1 s). Polling rather
than pub/sub: a poll notices expiry and a Redis restart by itself, costs one
``HGETALL`` a second, and a message missed while a replica restarts cannot leave it
broken. A fault set through one replica's admin API applies there at once and on
the others within a refresh. While Redis cannot be read the process has no faults:
chaos never becomes an outage of its own.

The kinds, where each acts, and its parameters (``probability`` is 1 unless given):

=====================  ==========================================  =======================
kind                   what happens                                parameters
=====================  ==========================================  =======================
``latency``            a pause before the handler runs             ``ms``, ``jitter_ms``
``error``              an error answer instead of the handler      ``status``
``abort``              the connection closed mid-answer
``cpu``                a busy loop that blocks the event loop      ``ms`` per request
``memory_leak``        each request keeps ``kb``, up to ``cap_mb``  ``kb``, ``cap_mb``
``slow_dependency``    a pause before each database query or       ``dependency``, ``ms``,
                       Redis call                                  ``jitter_ms``
``dependency_outage``  those calls fail as if it were down         ``dependency``
``worker_slowdown``    a pause before each broker message          ``ms``, ``jitter_ms``
``worker_crash``       the process exits on a message: the         (the supervisor restarts
                       supervisor restarts it, it crashes again     it: a crash loop)
=====================  ==========================================  =======================

Every fault expires (``duration_s``: 5 min unless given, 1 h at most), so nothing
stays broken by accident; the HTTP and dependency kinds can be limited to one ``route``
template (``/charges``, ``/products/{product_id}``): a dependency fault with a route hits
only the queries and Redis calls made while serving a path of it, so one endpoint's
database can be slow while the others' is not (and a worker's calls, outside any
request, are never hit by it). A worker fault's ``route`` is an event type, the
message's routing key (``order.failed``): only those messages are slowed or crash
the worker. The admin, health and metrics routes are
never faulted: the switch to end an experiment and the probes that watch it keep
working. Chaos is on only where an admin token is configured (``OBSLAB_ADMIN_TOKEN``):
without one there is no admin API, no poll and no fault.

What a fault does is visible: ``obslab_chaos_active{service,fault}`` is 1 while a
fault of that kind is active, a request a fault hit carries a ``chaos.injected`` span event, and
each fault logs ``chaos.injected`` the first time it hits in a process (not once per
request, which would flood the logs under load).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import os
import random
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from opentelemetry import trace
from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from obskit._errors import DownstreamUnavailable, NotFound, ServiceError, error_response
from obskit._settings import ServiceSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

# redis is imported only where chaos is turned on, and SQLAlchemy not at all here
# (the database and Redis hooks live in _db.py and _redis.py): a service without an
# admin token, or without a database, does not pay for loading them.

log = structlog.get_logger("obskit.chaos")

FaultKind = Literal[
    "latency",
    "error",
    "abort",
    "cpu",
    "memory_leak",
    "slow_dependency",
    "dependency_outage",
    "worker_slowdown",
    "worker_crash",
]
KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
HTTP_KINDS = frozenset({"latency", "error", "abort", "cpu", "memory_leak"})
DEPENDENCY_KINDS = frozenset({"slow_dependency", "dependency_outage"})
WORKER_KINDS = frozenset({"worker_slowdown", "worker_crash"})
#: Kinds that pause for ``ms`` (plus up to ``jitter_ms``), so need an ``ms``.
TIMED_KINDS = frozenset({"latency", "cpu", "slow_dependency", "worker_slowdown"})

DEFAULT_DURATION_S = 300
MAX_DURATION_S = 3600
#: Paths no fault touches: the chaos switch itself and what watches the service.
EXEMPT_PREFIXES = ("/admin/", "/health/", "/metrics")

CHAOS_ACTIVE = Gauge(
    "obslab_chaos_active",
    "1 while a fault of this kind is injected into this service (obslab chaos list).",
    ["service", "fault"],
)


# ----------------------------------------------------------------- the fault model


class FaultCreate(BaseModel):
    """A fault to inject: the body of ``POST /admin/chaos/faults``."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    #: Only requests to this route template (HTTP and dependency kinds), or messages of
    #: this event type (worker kinds: ``order.placed``); everything when unset.
    route: str | None = Field(
        default=None, pattern=r"^(/[A-Za-z0-9_\-./{}]*|[a-z][a-z0-9_.]*)$", max_length=200
    )
    #: The share of requests, queries or messages the fault hits.
    probability: float = Field(default=1.0, gt=0, le=1)
    ms: int = Field(default=0, ge=0, le=60_000)
    #: A uniform random extra of 0 to ``jitter_ms`` on top of ``ms``.
    jitter_ms: int = Field(default=0, ge=0, le=60_000)
    #: The answer of an ``error`` fault.
    status: int = Field(default=503, ge=400, le=599)
    dependency: Literal["database", "redis"] | None = None
    #: What each request keeps, and where a ``memory_leak`` stops growing.
    kb: int = Field(default=256, ge=1, le=10_240)
    cap_mb: int = Field(default=64, ge=1, le=1024)
    duration_s: int = Field(default=DEFAULT_DURATION_S, ge=1, le=MAX_DURATION_S)

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        if self.kind in TIMED_KINDS and self.ms == 0:
            raise ValueError(f"a {self.kind} fault needs ms > 0")
        if self.kind == "cpu" and self.ms > 5_000:
            raise ValueError("a cpu fault burns at most 5000 ms per request")
        if self.kind in DEPENDENCY_KINDS and self.dependency is None:
            raise ValueError(f"a {self.kind} fault needs a dependency: database or redis")
        if self.kind not in DEPENDENCY_KINDS and self.dependency is not None:
            raise ValueError(f"a {self.kind} fault takes no dependency")
        if self.route is None:
            return self
        if self.kind in HTTP_KINDS | DEPENDENCY_KINDS and not self.route.startswith("/"):
            raise ValueError(f"a {self.kind} fault's route is a path template: /charges")
        if self.kind in WORKER_KINDS and self.route.startswith("/"):
            raise ValueError(f"a {self.kind} fault's route is an event type: order.placed")
        return self


class Fault(FaultCreate):
    """A fault as stored and listed: what was asked, plus its id, service and expiry."""

    id: str
    service: str
    #: Seconds since the epoch (every replica compares them with its own clock).
    created_at: float
    expires_at: float

    def delay_s(self) -> float:
        return (self.ms + random.uniform(0, self.jitter_ms)) / 1000

    def hits(self) -> bool:
        return self.probability >= 1 or random.random() < self.probability


class FaultStore:
    """The faults of one service in Redis: one hash, a field per fault."""

    def __init__(self, redis: Redis, service: str) -> None:
        self.redis = redis
        self.service = service
        self.key = f"obslab:chaos:{service}"

    async def add(self, spec: FaultCreate) -> Fault:
        now = time.time()
        fault = Fault(
            **spec.model_dump(),
            id=uuid.uuid4().hex[:12],
            service=self.service,
            created_at=now,
            expires_at=now + spec.duration_s,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, fault.id, fault.model_dump_json())
            # Each fault's own expiry is checked on read; this bounds the whole hash,
            # so even a fault no process ever reads again is gone within the hour.
            pipe.expire(self.key, MAX_DURATION_S)
            await pipe.execute()
        return fault

    async def active(self) -> list[Fault]:
        """The faults not yet expired, oldest first; expired or unreadable ones are dropped."""
        stored = await self.redis.hgetall(self.key)
        now = time.time()
        faults: list[Fault] = []
        stale: list[bytes | str] = []
        for field, raw in stored.items():
            try:
                fault = Fault.model_validate_json(raw)
            except ValidationError:
                stale.append(field)
                continue
            if fault.expires_at > now:
                faults.append(fault)
            else:
                stale.append(field)
        if stale:
            await self.redis.hdel(self.key, *stale)
        return sorted(faults, key=lambda f: f.created_at)

    async def remove(self, fault_id: str) -> bool:
        return bool(await self.redis.hdel(self.key, fault_id))

    async def clear(self) -> int:
        cleared = len(await self.active())
        await self.redis.delete(self.key)
        return cleared


# ----------------------------------------------------------------- one process's faults


class Chaos:
    """The faults this process applies, refreshed from Redis in the background."""

    def __init__(self, service: str, redis_url: str, refresh_s: float = 1.0) -> None:
        self.service = service
        self.redis_url = redis_url
        self.refresh_s = refresh_s
        self.faults: list[Fault] = []
        self.store: FaultStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._reported: set[str] = set()  # faults whose first hit was logged
        self._store_down = False
        self._leaked: list[bytes] = []
        for kind in KINDS:  # every series exists at 0, so "no fault" is a value, not a gap
            CHAOS_ACTIVE.labels(service, kind).set(0)

    async def start(self) -> None:
        from redis.asyncio import Redis

        redis = Redis.from_url(
            self.redis_url, max_connections=4, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self.store = FaultStore(redis, self.service)
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
        if self.store is not None:
            await self.store.redis.aclose()
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

        assert self.store is not None
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
_request_path: ContextVar[str | None] = ContextVar("obskit_chaos_path", default=None)


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# ----------------------------------------------------------------- where faults act


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
        token = _request_path.set(scope["path"])
        try:
            await self._serve(scope, receive, send)
        finally:
            _request_path.reset(token)

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


def dependency_fault(service: str, dependency: str) -> Fault | None:
    """The fault ``service`` should suffer before a call to ``dependency`` (an outage
    before a slowdown), if any; the database and Redis hooks act on it."""
    chaos = _CHAOS.get(service)
    if chaos is None or not chaos.has(DEPENDENCY_KINDS):
        return None
    path = _request_path.get()
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


# ----------------------------------------------------------------- the admin API


def _refusal(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ServiceError:
    error = ServiceError(message, code=code, headers=headers)
    error.status_code = status
    return error


def require_admin(request: Request) -> None:
    """Let through only a caller with the admin token, from an allowed network.

    In this order: no token configured → 404 (the admin API is off); a request that
    came through a proxy or from outside ``admin_networks`` → 403; a missing or wrong
    ``Authorization: Bearer <token>`` → 401. The token is compared in constant time.
    """
    settings: ServiceSettings = request.app.state.settings
    if settings.admin_token is None:
        raise NotFound(
            "The admin API is off: set OBSLAB_ADMIN_TOKEN to turn it on.", code="admin_disabled"
        )
    # The edge never routes /admin; a forwarded request means a proxy was told to.
    if "forwarded" in request.headers or "x-forwarded-for" in request.headers:
        raise _refusal(403, "forbidden", "The admin API is not served through a proxy.")
    try:
        client = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        client = None
    if client is None or not any(client in network for network in settings.admin_networks):
        raise _refusal(403, "forbidden", "The admin API is not open to this network.")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = settings.admin_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise _refusal(
            401,
            "unauthorized",
            "Send the admin token as a bearer token.",
            {"www-authenticate": "Bearer"},
        )


async def _chaos(request: Request) -> AsyncIterator[Chaos]:
    """This process's chaos, for an admin call; a Redis failure in the call is a 503."""
    from redis.exceptions import RedisError

    try:
        yield request.app.state.chaos
    except (RedisError, OSError) as exc:
        raise DownstreamUnavailable(
            "The fault store (Redis) is unavailable: try again.",
            code="chaos_store_unavailable",
        ) from exc


ChaosDep = Annotated[Chaos, Depends(_chaos)]

# Not in the OpenAPI document: it is no part of the service's API, and a fuzzer
# reading that document must not find a switch to break the service.
admin_router = APIRouter(
    prefix="/admin/chaos", include_in_schema=False, dependencies=[Depends(require_admin)]
)


class FaultsCleared(BaseModel):
    cleared: int


@admin_router.get("/faults")
async def list_faults(chaos: ChaosDep) -> list[Fault]:
    await chaos.refresh()
    return chaos.faults


@admin_router.post("/faults", status_code=201)
async def create_fault(spec: FaultCreate, chaos: ChaosDep) -> Fault:
    assert chaos.store is not None
    fault = await chaos.store.add(spec)
    await chaos.refresh()  # this replica applies it now, the others within a refresh
    return fault


@admin_router.delete("/faults")
async def clear_faults(chaos: ChaosDep) -> FaultsCleared:
    assert chaos.store is not None
    cleared = await chaos.store.clear()
    await chaos.refresh()
    return FaultsCleared(cleared=cleared)


@admin_router.delete("/faults/{fault_id}", status_code=204)
async def delete_fault(fault_id: str, chaos: ChaosDep) -> Response:
    assert chaos.store is not None
    if not await chaos.store.remove(fault_id):
        raise NotFound(f"No active fault {fault_id}.", code="fault_not_found")
    await chaos.refresh()
    return Response(status_code=204)


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
