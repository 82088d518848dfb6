"""A service's app as an AWS Lambda function: the same ``create_app``, adapted by Mangum.

Lambda runs a handler in an execution environment that it freezes between
invocations and reclaims whenever it likes. Three things follow, each handled here.

**Initialisation once per environment.** Mangum (Lambda events to ASGI and back)
runs the app's lifespan around *every* invocation when left at its default
(``lifespan="auto"``): our lifespans would check the database, create its tables,
open the engine and the Redis pool, then dispose of them, for each request. So
Mangum runs with ``lifespan="off"`` and :class:`LambdaFunction` enters the lifespan
itself, once, in Lambda's init phase, on an event loop it keeps: the pooled
connections belong to that loop, and every invocation runs on it. Nothing else is
kept between invocations: the middleware starts each request's log context afresh.

**Nothing left in a buffer at return.** A frozen environment runs no thread, so
spans, log records and metrics waiting in the batch processors would leave with
the next invocation, or never. Each invocation flushes all three before it
returns, to the OpenTelemetry collector that the Lambda layer runs beside the
function on localhost (see ``serverless/``), which forwards them while the
function waits for its next event. Prometheus scrapes a container, but nobody
scrapes a function: here metrics go out over OTLP, the FaaS ones below (and the
database instrumentation's pool usage).

**A short cold start.** A cold start is mostly imports. The kit imports what
only a container needs on first use, so a function never loads it: uvicorn (the
function serves no HTTP itself) and the client side of calls to other services
(httpx and its instrumentation, stamina), which catalog and payments never make.
Everything a request needs is imported and opened in the init phase, so no warm
request pays for a late import; only the metrics exporter waits until an endpoint
is configured. ``OBSLAB_EAGER_IMPORTS=true`` imports :data:`CONTAINER_ONLY` up
front, as a container does, so that ``make bench`` (``bench/coldstart.py``) can
show what deferring saves.

**Cold starts visible.** Lambda's init phase (importing the handler module,
building the app, opening its clients) is one span, ``function.init``. Each
invocation is a SERVER span named after the function, with the FaaS conventions'
``faas.coldstart``, ``faas.invocation_id`` and ``faas.trigger``; the cold one links
to the init span. The app's own HTTP span is its child: the invocation's context
goes into the event's ``traceparent`` before Mangum hands the event to the app.

=========================  =========  ===========================================
metric (OTLP)              kind       what
=========================  =========  ===========================================
``faas.invoke_duration``   histogram  seconds per invocation, flush excluded
``faas.init_duration``     histogram  seconds of the init phase, once per cold start
``faas.coldstarts``        counter    invocations that found a new environment
``faas.errors``            counter    invocations answered with a 5xx or that raised
=========================  =========  ===========================================
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import os
import signal
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from mangum import Mangum
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from obskit import _telemetry
from obskit._settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)

#: What a container loads and a function does not (see "A short cold start" above).
CONTAINER_ONLY = ("uvicorn", "httpx", "opentelemetry.instrumentation.httpx", "stamina")

if os.environ.get("OBSLAB_EAGER_IMPORTS", "").lower() in ("1", "true"):
    for _module in CONTAINER_ONLY:
        importlib.import_module(_module)

_meter_provider: Any = None  # the SDK's MeterProvider, once set up (see _setup_metrics)


@dataclass
class LocalContext:
    """What Lambda passes as ``context``, for a handler run on a laptop or in a test."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    timeout_s: float = 15.0
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _setup_metrics(service_name: str) -> None:
    """Install a meter provider that exports over OTLP only when flushed.

    Imported here, not at the top: a function with no metrics endpoint (or with
    telemetry off) never loads the metrics SDK and its exporter.
    """
    global _meter_provider
    if _meter_provider is not None or _telemetry._endpoint_for("metrics") is None:
        return
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    # An infinite interval starts no export thread: we export at each flush.
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=math.inf)
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
            # Each environment reports its own cumulative series: without an instance
            # attribute, two warm environments of one function would overwrite each
            # other's counts. Lambda names each environment's log stream.
            "faas.instance": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", uuid.uuid4().hex),
        }
    )
    _meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
    metrics.set_meter_provider(_meter_provider)


class LambdaFunction(Generic[S]):
    """A Lambda handler for ``create_app(settings)``; build it at module level, once.

    Building it is the init phase: the app is made, its lifespan entered (database,
    Redis, telemetry), and everything is kept for the invocations that follow.
    ``started_ns`` is when the handler module began to load (``time.time_ns()``),
    so that the init span covers its imports too.
    """

    def __init__(
        self,
        create_app: Callable[[S], FastAPI],
        settings: S,
        *,
        started_ns: int | None = None,
    ) -> None:
        started_ns = started_ns or time.time_ns()
        self.name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", f"obslab-{settings.service_name}")
        #: Invocations so far: the first one is the cold start.
        self.invocations = 0
        if settings.telemetry:
            _setup_metrics(settings.service_name)
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        app = create_app(settings)
        #: The app, as ``create_app`` made it (its lifespan entered once, below).
        self.app = app
        # After create_app: instrument_service installs the tracer provider. With
        # telemetry off, the spans below go nowhere, whatever provider a process has.
        self._tracer = (
            trace.get_tracer("obskit.function") if _telemetry.enabled else trace.NoOpTracer()
        )
        meter = metrics.get_meter("obskit.function")
        self._duration = meter.create_histogram("faas.invoke_duration", unit="s")
        self._coldstarts = meter.create_counter("faas.coldstarts")
        self._errors = meter.create_counter("faas.errors")

        self._lifespan = AsyncExitStack()
        with self._tracer.start_as_current_span(
            "function.init", start_time=started_ns, attributes={"faas.name": self.name}
        ) as span:
            self.loop.run_until_complete(
                self._lifespan.enter_async_context(app.router.lifespan_context(app))
            )
        self._init_link = Link(span.get_span_context())
        init_s = (time.time_ns() - started_ns) / 1e9
        meter.create_histogram("faas.init_duration", unit="s").record(init_s)
        #: Seconds the init phase took (module import, app, lifespan).
        self.init_s = init_s
        # The lifespan is ours (above), so Mangum must not run it per invocation.
        self._mangum = Mangum(app, lifespan="off")
        # Mangum logs every request at INFO; the middleware already writes the one
        # canonical line per request, with the trace id.
        logging.getLogger("mangum").setLevel(logging.WARNING)
        if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
            # With an extension registered (the collector layer), Lambda sends the
            # runtime SIGTERM before it reclaims the environment: close the clients
            # and flush then. Only on Lambda: a test process keeps its own handler.
            signal.signal(signal.SIGTERM, lambda *_: self.close())

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Handle one API Gateway (HTTP API) event; every signal is flushed on return."""
        cold = self.invocations == 0
        self.invocations += 1
        # Mangum runs the request on the current event loop: ours, where the pools live.
        asyncio.set_event_loop(self.loop)
        headers = dict(event.get("headers") or {})
        attributes = {
            "faas.trigger": "http",
            "faas.coldstart": cold,
            "faas.invocation_id": context.aws_request_id,
            "cloud.resource_id": context.invoked_function_arn,
        }
        started = time.perf_counter()
        failed = True
        try:
            with self._tracer.start_as_current_span(
                self.name,
                context=propagate.extract(headers),  # the caller's trace, when it sent one
                kind=SpanKind.SERVER,
                attributes=attributes,
                links=[self._init_link] if cold else None,
            ) as span:
                propagate.inject(headers)  # so the app's HTTP span is this span's child
                response: dict[str, Any] = self._mangum({**event, "headers": headers}, context)
                status = int(response["statusCode"])
                span.set_attribute("http.response.status_code", status)
                failed = status >= 500
                if failed:
                    span.set_status(Status(StatusCode.ERROR))
            return response
        finally:
            labels = {"faas.trigger": "http"}
            self._duration.record(time.perf_counter() - started, labels)
            if cold:
                self._coldstarts.add(1, labels)
            if failed:
                self._errors.add(1, labels)
            flush()

    def close(self) -> None:
        """Leave the lifespan (close the clients, flush): the environment's shutdown."""
        if self.loop.is_closed():
            return
        self.loop.run_until_complete(self._lifespan.aclose())
        flush()
        self.loop.close()


#: Each signal's flush is an HTTP round trip to the collector on localhost, mostly
#: spent waiting for its answer: run side by side, the three overlap instead of
#: adding up (here that about halved a warm invocation's overhead). The threads
#: idle, frozen with the rest, between invocations.
_flusher = ThreadPoolExecutor(max_workers=3, thread_name_prefix="obskit-flush")


def flush(timeout_ms: int = 2000) -> None:
    """Export every span, log record and metric still buffered, before returning."""
    providers = (_telemetry._provider, _telemetry._logger_provider, _meter_provider)
    flushes = [_flusher.submit(p.force_flush, timeout_ms) for p in providers if p is not None]
    for done in flushes:
        done.result()
