"""The HTTP client a service uses to call another service.

One :class:`ServiceClient` per downstream service, created in the lifespan and
reused for every request (a client per request would pay a TCP handshake and a
pool each time). It

* is traced by the OpenTelemetry httpx instrumentation, which injects the W3C
  ``traceparent`` header, so the callee's spans join the caller's trace;
* records ``http_client_request_duration_seconds`` by ``peer_service``;
* maps failures to :mod:`obskit._errors`: unreachable → 503, too slow → 504,
  a 5xx answer → 502. A 4xx answer is returned to the caller to interpret.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from obskit import _telemetry
from obskit._errors import DownstreamError, DownstreamTimeout, DownstreamUnavailable
from obskit._metrics import HTTP_CLIENT_DURATION, POOLS, observe_with_exemplar
from obskit._settings import ServiceSettings


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
        )
        if _telemetry.enabled:
            HTTPXClientInstrumentor.instrument_client(self.http)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request; a 4xx comes back, anything worse raises a DownstreamError."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.PoolTimeout as exc:  # our own pool is full: overload, not a slow peer
            raise DownstreamUnavailable(f"No connection to {self.peer_service} is free.") from exc
        except httpx.TimeoutException as exc:
            raise DownstreamTimeout(f"{self.peer_service} did not answer in time.") from exc
        except httpx.TransportError as exc:
            raise DownstreamUnavailable(f"{self.peer_service} cannot be reached.") from exc
        if response.status_code >= 500:
            raise DownstreamError(
                f"{self.peer_service} failed with {response.status_code}.",
                details=[{"peer_service": self.peer_service, "status": response.status_code}],
            )
        return response

    async def aclose(self) -> None:
        self._unwatch()
        await self.http.aclose()
