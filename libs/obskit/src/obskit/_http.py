"""The HTTP client a service uses to call another service.

One :class:`ServiceClient` per downstream service, created in the lifespan and
reused for every request (a client per request would pay a TCP handshake and a
pool each time). It

* is traced by the OpenTelemetry httpx instrumentation, which injects the W3C
  ``traceparent`` header, so the callee's spans join the caller's trace;
* records ``http_client_request_duration_seconds`` by ``peer_service``;
* maps failures to :mod:`obskit._errors`: unreachable → 503, too slow → 504,
  a 5xx answer → 502. A 4xx answer is returned to the caller to interpret;
* says who is calling: a service token for the downstream (:mod:`obskit._identity`).

Every call goes through the resilience layers, outermost first::

    deadline → retry → bulkhead → breaker → timeout → the wire

* **deadline** (:mod:`obskit._deadline`): a spent budget makes no call at all;
* **retry** (:mod:`obskit._retry`) sits outside the breaker and the bulkhead, so
  each *attempt* is one call they see (the breaker's failure rate is the
  downstream's, not a count of our loops) and their refusals reach the retry,
  which never repeats them;
* **bulkhead** (:mod:`obskit._bulkhead`) before the breaker: a call it refuses
  never takes one of the breaker's few half-open trial permits;
* **breaker** (:mod:`obskit._breaker`), one per downstream: 5xx, timeouts and
  unreachable count as failures, 4xx as successes (the downstream worked); a
  downstream's own refusal (503 ``circuit_open``/``bulkhead_full``) counts as
  neither, so a breaker opens next to the fault rather than all along the chain;
* **timeout**: min(the per-call timeout, the budget left) for the whole attempt.

Per call, ``idempotent=`` overrides the method's verdict (a POST idempotent by
design), ``timeout=`` the default timeout, and ``within_deadline=False`` detaches a
compensation from a caller that has given up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from obskit import _deadline, _telemetry
from obskit._breaker import BreakerConfig, CircuitBreaker
from obskit._bulkhead import Bulkhead
from obskit._errors import (
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
)
from obskit._identity import service_token
from obskit._metrics import HTTP_CLIENT_DURATION, POOLS, observe_with_exemplar
from obskit._retry import (
    RETRY_ATTEMPTS,
    RetryBudget,
    RetryPolicy,
    call_with_retries,
    is_idempotent,
)
from obskit._settings import ServiceSettings


class ServiceTokenAuth(httpx.Auth):
    """httpx auth that signs a fresh service token for each request (retries included).

    Here rather than in ``_identity``, which every service loads for its middleware:
    only a service that calls others pays for importing httpx.
    """

    def __init__(self, key: str, caller: str, audience: str, ttl_s: int = 60) -> None:
        self.key, self.caller, self.audience, self.ttl_s = key, caller, audience, ttl_s

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = service_token(self.key, self.caller, self.audience, self.ttl_s)
        request.headers["authorization"] = f"Bearer {token}"
        yield request


#: Answers worth another try: the downstream or a proxy in front of it may recover.
RETRYABLE_STATUSES = frozenset({502, 503, 504})
#: Error codes of a downstream's own refusals: its breaker is open, its bulkhead full,
#: or its budget spent. Asking again at once would get the same answer.
REFUSAL_CODES = frozenset({"circuit_open", "bulkhead_full", "deadline_exceeded"})


class _Answered5xx(DownstreamError):
    """A 5xx answer (a 502 for our caller), with its status and error code.

    A downstream's refusal keeps its status, code and ``Retry-After``: "orders'
    circuit to payments is open, come back in 5 s" means more to our caller than
    "orders failed".
    """

    def __init__(self, peer_service: str, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.error_code = str(response.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            self.error_code = ""
        retry_after = response.headers.get("retry-after")
        super().__init__(
            f"{peer_service} failed with {self.status}.",
            details=[{"peer_service": peer_service, "status": self.status}],
            headers={"Retry-After": retry_after} if retry_after else None,
        )
        if self.error_code in REFUSAL_CODES:
            self.status_code, self.code = self.status, self.error_code
            self.message = f"{peer_service} refused the call: {self.error_code}."


def _retryable(exc: Exception) -> bool:
    """A failure that may pass; never one of our own refusals."""
    if isinstance(exc, CircuitOpen | BulkheadFull | DeadlineExceeded):
        return False
    if isinstance(exc, _Answered5xx):
        return exc.status in RETRYABLE_STATUSES and exc.error_code not in REFUSAL_CODES
    return isinstance(exc, DownstreamUnavailable | DownstreamTimeout)


class _MeasuredTransport(httpx.AsyncBaseTransport):
    """Times every request on the wire and records it with its outcome."""

    def __init__(self, inner: httpx.AsyncHTTPTransport, peer_service: str) -> None:
        self._inner = inner
        self._peer = peer_service

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        status, error_type = "", ""
        try:
            response = await self._inner.handle_async_request(request)
            status = str(response.status_code)
            error_type = status if response.status_code >= 500 else ""
            return response
        except Exception as exc:
            error_type = type(exc).__name__
            raise
        finally:
            observe_with_exemplar(
                HTTP_CLIENT_DURATION,
                time.perf_counter() - start,
                request.method,
                self._peer,
                status,
                error_type,
            )

    def pool_reading(self, limit: int) -> tuple[int, int, int]:
        connections = self._inner._pool.connections  # httpcore's public pool view
        idle = sum(1 for c in connections if c.is_idle())
        return len(connections) - idle, idle, limit

    async def aclose(self) -> None:
        await self._inner.aclose()


class ServiceClient:
    """Calls one downstream service; create it in the lifespan, close it on shutdown."""

    def __init__(
        self,
        peer_service: str,
        base_url: str,
        settings: ServiceSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.peer_service = peer_service
        limits = httpx.Limits(
            max_connections=settings.http_max_connections,
            max_keepalive_connections=settings.http_max_connections,
        )
        wire = httpx.AsyncHTTPTransport(limits=limits)
        measured = _MeasuredTransport(wire, peer_service)
        self._unwatch = POOLS.watch(
            f"http_{peer_service}",
            lambda: measured.pool_reading(settings.http_max_connections),
        )
        self.http = httpx.AsyncClient(
            base_url=base_url,
            # Tests pass an in-process transport; a service measures unless telemetry is off.
            transport=transport or (measured if _telemetry.enabled else wire),
            timeout=httpx.Timeout(settings.http_timeout_s, pool=settings.http_pool_timeout_s),
            # Who is calling: a service token for this downstream on every request.
            auth=ServiceTokenAuth(
                settings.service_token_key.get_secret_value(),
                settings.service_name,
                peer_service,
                settings.service_token_ttl_s,
            ),
        )
        if _telemetry.enabled:
            HTTPXClientInstrumentor.instrument_client(self.http)
        self.resilience = settings.resilience
        self.timeout_s = settings.http_timeout_s
        # With the layer on, asyncio.timeout bounds each attempt as a whole; httpx keeps
        # only its wait for a free connection (its own read timeout would cut a call
        # with a longer per-call timeout short, and call it by another name).
        self._wire_timeout = httpx.Timeout(None, pool=settings.http_pool_timeout_s)
        self.retry_policy = RetryPolicy(
            attempts=settings.retry_attempts,
            wait_initial_s=settings.retry_wait_initial_s,
            wait_max_s=settings.retry_wait_max_s,
        )
        self.retry_budget = RetryBudget(settings.retry_budget_tokens, settings.retry_budget_ratio)
        for retry in range(1, settings.retry_attempts):  # each series at 0, for rate()
            RETRY_ATTEMPTS.labels(peer_service, str(retry))
        self.bulkhead = Bulkhead(peer_service, settings.bulkhead_max_calls)
        self.breaker = CircuitBreaker(
            peer_service,
            BreakerConfig(
                window_type=settings.breaker_window_type,
                window_size=settings.breaker_window_size,
                minimum_calls=settings.breaker_minimum_calls,
                failure_rate=settings.breaker_failure_rate,
                slow_call_rate=settings.breaker_slow_call_rate,
                slow_call_s=settings.breaker_slow_call_s,
                wait_open_s=settings.breaker_wait_open_s,
                half_open_calls=settings.breaker_half_open_calls,
            ),
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        # httpx's name for it; applied with asyncio.timeout below, as the rule wants.
        timeout: float | None = None,  # noqa: ASYNC109
        within_deadline: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; a 4xx comes back, anything worse raises a DownstreamError.

        ``idempotent`` says whether the call may be retried (default: by its method
        and ``Idempotency-Key``); ``timeout`` replaces the per-call timeout;
        ``within_deadline=False`` ignores the request's deadline (a compensation).
        """
        if not self.resilience:  # a plain call: httpx's own timeouts, nothing else
            plain = kwargs if timeout is None else {**kwargs, "timeout": timeout}
            return await self._send(method, url, plain)
        if not within_deadline:
            with _deadline.without_deadline():
                return await self.request(
                    method, url, idempotent=idempotent, timeout=timeout, **kwargs
                )
        if idempotent is None:
            idempotent = is_idempotent(method, kwargs.get("headers"))
        policy = self.retry_policy if idempotent else RetryPolicy(attempts=1)

        async def attempt() -> httpx.Response:
            limit, by_deadline = _deadline.call_timeout(
                timeout or self.timeout_s, self.peer_service
            )
            headers = httpx.Headers(kwargs.get("headers"))
            # A little less than we will wait: the callee gives up first (see _deadline).
            headers[_deadline.DEADLINE_HEADER] = f"{_deadline.downstream_budget(limit):.3f}"
            with self.bulkhead.slot():
                call = {**kwargs, "headers": headers, "timeout": self._wire_timeout}
                return await self._guarded(method, url, limit, by_deadline, call)

        return await call_with_retries(
            self.peer_service,
            attempt,
            policy=policy,
            budget=self.retry_budget,
            retryable=_retryable,
        )

    async def _guarded(
        self, method: str, url: str, limit: float, by_deadline: bool, kwargs: dict[str, Any]
    ) -> httpx.Response:
        """One attempt through the breaker, within ``limit`` seconds."""
        permit = self.breaker.permit()
        start = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                response = await self._send(method, url, kwargs)
        except _Answered5xx as exc:
            if exc.error_code in REFUSAL_CODES:
                # The downstream refused for *its* dependency (its own breaker is open):
                # it is healthy, so this says nothing for our breaker to it. Counting it
                # would open every breaker up the chain and block the calls that work.
                self.breaker.release(permit)
            else:
                self.breaker.record(permit, True, time.monotonic() - start)
            raise
        except (DownstreamError, TimeoutError) as exc:
            self.breaker.record(permit, True, time.monotonic() - start)
            if not isinstance(exc, TimeoutError):
                raise
            if by_deadline:
                raise DeadlineExceeded(
                    f"{self.peer_service} did not answer within the request's budget.",
                    details=[{"downstream": self.peer_service}],
                ) from exc
            raise DownstreamTimeout(f"{self.peer_service} did not answer in time.") from exc
        except BaseException:
            # Cancelled from outside (the caller gave up, the server shuts down): that
            # says nothing about the downstream, so the permit is only given back.
            self.breaker.release(permit)
            raise
        self.breaker.record(permit, False, time.monotonic() - start)
        return response

    async def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        """The call on the wire, its failures mapped to the error tree."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.PoolTimeout as exc:  # our own pool is full: overload, not a slow peer
            raise DownstreamUnavailable(f"No connection to {self.peer_service} is free.") from exc
        except httpx.TimeoutException as exc:
            raise DownstreamTimeout(f"{self.peer_service} did not answer in time.") from exc
        except httpx.TransportError as exc:
            raise DownstreamUnavailable(f"{self.peer_service} cannot be reached.") from exc
        if response.status_code >= 500:
            raise _Answered5xx(self.peer_service, response)
        return response

    async def aclose(self) -> None:
        self._unwatch()
        await self.http.aclose()
