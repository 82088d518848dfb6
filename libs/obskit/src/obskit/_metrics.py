"""Prometheus metrics shared by every service, and the ``/metrics`` endpoint.

HTTP durations follow the stable OpenTelemetry HTTP semantic conventions, in seconds,
with the conventions' attribute names as labels (dots become underscores). Labels
are low-cardinality by construction: ``http_route`` is the route *template*
(``/products/{product_id}``), never the raw path. Observations carry the trace id
as an exemplar, so a latency spike on a dashboard links to a trace that caused it.

Pool gauges are read at scrape time by a collector, so the request path pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from obskit._telemetry import current_trace_id

# The bucket boundaries the OpenTelemetry HTTP conventions recommend, in seconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

HTTP_SERVER_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=HTTP_BUCKETS,
)
HTTP_SERVER_ACTIVE = Gauge(
    "http_server_active_requests",
    "HTTP server requests being handled right now.",
    ["http_request_method"],
)
HTTP_CLIENT_DURATION = Histogram(
    "http_client_request_duration_seconds",
    "Duration of outgoing HTTP requests, by the service called.",
    ["http_request_method", "peer_service", "http_response_status_code", "error_type"],
    buckets=HTTP_BUCKETS,
)


def observe_with_exemplar(histogram: Histogram, value: float, *labels: str) -> None:
    """Observe ``value`` and attach the current trace id as an exemplar when sampled."""
    trace_id = current_trace_id()
    histogram.labels(*labels).observe(value, exemplar={"trace_id": trace_id} if trace_id else None)


async def metrics_endpoint(request: Request) -> Response:
    """Serve the registry: OpenMetrics (with exemplars) to a scraper that asks for it."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(REGISTRY), media_type=content_type)


PoolReading = tuple[int, int, int]
"""A pool's (used, idle, max) connection counts."""


class _PoolCollector(Collector):
    """Reads every watched pool at scrape time: ``obslab_pool_connections{pool,state}``."""

    def __init__(self) -> None:
        self._pools: dict[str, Callable[[], PoolReading]] = {}

    def watch(self, pool: str, read: Callable[[], PoolReading]) -> Callable[[], None]:
        """Report pool ``pool`` through ``read`` until the returned function is called."""
        self._pools[pool] = read
        return lambda: self._pools.pop(pool, None) and None

    def collect(self) -> Iterable[Metric]:
        connections = GaugeMetricFamily(
            "obslab_pool_connections",
            "Connections in a client pool (database, Redis, HTTP), by state.",
            labels=["pool", "state"],
        )
        limits = GaugeMetricFamily(
            "obslab_pool_max_connections",
            "The most connections a client pool may open.",
            labels=["pool"],
        )
        for pool, read in list(self._pools.items()):
            used, idle, most = read()
            connections.add_metric([pool, "used"], used)
            connections.add_metric([pool, "idle"], idle)
            limits.add_metric([pool], most)
        yield connections
        yield limits


POOLS = _PoolCollector()
REGISTRY.register(POOLS)
