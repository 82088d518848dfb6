"""Rate limits at the gateway: per client and per route, shared by every replica.

Each request to an ``/api/…`` route counts against one limit, keyed by its route template
(``POST /api/orders``) and its client: the subject of a valid bearer token, else the
caller's address (the edge passes the real one in ``X-Forwarded-For``, which uvicorn
trusts from the proxy in front only). The counts live in Redis, so two replicas
behind nginx enforce one limit, not one each. The strategy is the ``limits``
library's sliding window counter: two counters per key, and no burst of twice the
limit at a window's edge as a fixed window allows.

Every answer of a limited route says where the client stands, in the headers of
the IETF draft (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds). Over the limit, the
answer is 429 ``too_many_requests`` with ``Retry-After``, counted in
``obslab_rate_limited_total{route}``.

A limiter must not become an outage: while Redis cannot be reached, requests pass
unlimited (fail open), each failure counted in ``obslab_rate_limit_errors_total``
and logged at most every 10 s; after a failure Redis is left alone for a second,
so a Redis that hangs costs one timeout a second, not one per request.

The check is a dependency of every ``/api`` route (see ``gateway.main``): a 429 is
an error of the app like any other, measured, logged, and given the security headers.
"""

from __future__ import annotations

import math
import time

import jwt
import limits
import structlog
from fastapi import Request
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import obskit
from gateway.auth import bearer_token, verify_token
from gateway.settings import Settings

log = structlog.get_logger("gateway.ratelimit")

RATE_LIMITED = Counter(
    "obslab_rate_limited",
    "Requests refused with 429 by the gateway's rate limits, by route template.",
    ["route"],
)
RATE_LIMIT_ERRORS = Counter(
    "obslab_rate_limit_errors",
    "Requests let through unlimited because the limits store (Redis) failed.",
)
#: After a store failure, this long without asking it (requests pass meanwhile).
PAUSE_AFTER_FAILURE_S = 1.0
WARN_EVERY_S = 10.0


class RateLimits:
    """The limits of every route, and the Redis that counts them (opened by the lifespan)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default = limits.parse(settings.rate_limit_default)
        self.routes = {key: limits.parse(v) for key, v in settings.rate_limit_routes.items()}
        self.redis: Redis | None = None
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        self.paused_until = 0.0
        self.warned_at = -math.inf

    async def start(self) -> None:
        # The kit's Redis client: a bounded pool, traced, and faulted by chaos
        # (dependency_outage on redis shows the limiter failing open).
        self.redis = obskit.create_redis(self.settings)
        storage = RedisStorage(
            f"async+{self.settings.redis_url}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix="obslab:ratelimit",
            # limits types its options as scalars, but hands them all to redis.asyncio,
            # which takes this pool: the kit's bounded, traced, chaos-faulted one.
            connection_pool=self.redis.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    @property
    def limiter(self) -> SlidingWindowCounterRateLimiter:
        """The limiter that counts in Redis, from :meth:`start` on."""
        if self._limiter is None:
            raise RuntimeError("RateLimits.start() was not called")
        return self._limiter

    async def aclose(self) -> None:
        if self.redis is not None:
            await obskit.close_redis(self.redis)

    async def hit(self, route: str, client: str) -> tuple[limits.RateLimitItem, bool, int, int]:
        """Count one request: (its limit, allowed?, remaining, seconds until reset).

        Raises :class:`StorageError` when Redis fails.
        """
        item = self.routes.get(route, self.default)
        allowed = await self.limiter.hit(item, route, client)
        stats = await self.limiter.get_window_stats(item, route, client)
        reset_s = max(1, math.ceil(stats.reset_time - time.time()))
        return item, allowed, stats.remaining, reset_s

    def store_failed(self, exc: Exception) -> None:
        RATE_LIMIT_ERRORS.inc()
        now = time.monotonic()
        self.paused_until = now + PAUSE_AFTER_FAILURE_S
        if now - self.warned_at >= WARN_EVERY_S:
            self.warned_at = now
            log.warning("ratelimit.store_unavailable", error=type(exc).__name__)


def client_key(settings: Settings, scope: Scope) -> str:
    """Whom a request counts against: its token's subject, else its address."""
    headers = dict(scope["headers"])
    token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
    if token is not None:
        try:
            return f"sub:{verify_token(settings, token).subject}"
        except jwt.InvalidTokenError:
            pass  # a bad token counts against the address it came from
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


#: Where the limit's headers wait, in the request's scope, for the answer to start.
SCOPE_KEY = "obslab.ratelimit"


class RateLimited(obskit.ServiceError):
    status_code, code = 429, "too_many_requests"


async def rate_limit(request: Request) -> None:
    """Count the request against its client's limit on its route; over it, 429.

    A dependency of every ``/api`` route, so it runs after routing (the route
    template is known) and before the token check (a flood of bad tokens is
    refused by address). Its 429 is a :class:`obskit.ServiceError`, answered as
    JSON like any error of the app.
    """
    rate_limits: RateLimits | None = request.app.state.rate_limits
    if rate_limits is None or time.monotonic() < rate_limits.paused_until:
        return  # off, or failing open for a moment after Redis failed
    template = getattr(request.scope.get("route"), "path", "unmatched")
    try:
        item, allowed, remaining, reset_s = await rate_limits.hit(
            f"{request.method} {template}", client_key(rate_limits.settings, request.scope)
        )
    except (StorageError, OSError) as exc:
        rate_limits.store_failed(exc)
        return
    headers = {
        "ratelimit-limit": str(item.amount),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(reset_s),
    }
    if not allowed:
        RATE_LIMITED.labels(route=template).inc()
        raise RateLimited(
            f"Over {item.amount} requests in {item.get_expiry()} s: retry in {reset_s} s.",
            headers={**headers, "retry-after": str(reset_s)},
        )
    request.scope[SCOPE_KEY] = [(k.encode(), v.encode()) for k, v in headers.items()]


class RateLimitHeadersMiddleware:
    """Adds the RateLimit-* headers that :func:`rate_limit` left in the scope to the answer.

    A dependency cannot set headers on an answer its route builds itself (the
    gateway's routes return a ``Response``), so this innermost middleware does it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and SCOPE_KEY in scope:
                message = {**message, "headers": [*message.get("headers", []), *scope[SCOPE_KEY]]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
