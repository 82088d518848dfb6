"""Lab 5, instrument it yourself: ``start`` copies a small uninstrumented service
(``labs/05-instrument-it-yourself/reviews.py``) into the lab's folder and runs it with
uvicorn, reloading on every save, scraped by Prometheus as job ``workshop``. The
learner instruments it the way the shop's services are: ``obskit.instrument_service``
(traces, RED metrics, logs: the automatic part), then a span of their own with an
attribute, and a counter. The check finds the span in a trace of the lab's store and
the counter in Prometheus."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx

from obslab.labkit import background
from obslab.labkit.base import Context, Exercise, Step
from obslab.native.process import Process

SCAFFOLD = Path(__file__).with_name("reviews.py")
ROUTE = "/reviews/{product_id}"
SPAN = "reviews.summarise"
ATTRIBUTE = "reviews.count"
COUNTER = "obslab_review_summaries_total"


def _process(context: Context) -> Process:
    settings, folder = context.settings, context.folder()
    port = settings.reviews_port
    return Process(
        name="reviews",
        argv=[
            *(sys.executable, "-m", "uvicorn", "reviews:app", "--app-dir", str(folder)),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--reload", "--reload-dir", str(folder)),
        ],
        env={
            # What the shop's services get from the lab (lab.plan): a dev setup whose
            # traces and logs go to the lab's receiver.
            "OBSLAB_ENVIRONMENT": "dev",
            "OTEL_EXPORTER_OTLP_ENDPOINT": settings.otlp_endpoint
            or f"http://127.0.0.1:{settings.otlp_port}",
        },
        health=f"http://127.0.0.1:{port}/reviews/1",
    )


def _targets(context: Context, groups: list[dict[str, object]]) -> None:
    path = context.settings.path("prometheus", "targets", "workshop.json")
    if path.parent.is_dir():  # not when the lab was never up here
        path.write_text(json.dumps(groups, indent=2))


class Instrument(Exercise):
    title = "Instrument it yourself: a span, an attribute, a counter"
    minutes = 35

    def start(self, context: Context) -> list[str]:
        context.stack.prometheus.value("vector(1)")  # Unreachable when the lab is down
        copy = context.folder() / "reviews.py"
        shutil.copyfile(SCAFFOLD, copy)
        background.spawn(context, _process(context))
        port = context.settings.reviews_port
        _targets(context, [{"targets": [f"127.0.0.1:{port}"], "labels": {"service": "reviews"}}])
        return [
            f"The reviews service runs on http://127.0.0.1:{port}, from {copy};"
            " it reloads each time you save that file (its log: reviews.log beside it)."
        ]

    def check(self, context: Context) -> list[Step]:
        stack, record = context.stack, context.record
        port = context.settings.reviews_port
        try:
            answered = httpx.get(f"http://127.0.0.1:{port}/reviews/1", timeout=5).status_code
        except httpx.HTTPError:
            answered = 0
        traced = [
            t
            for t in stack.telemetry.traces(service="reviews", route=ROUTE, limit=50)
            if t["start_ns"] >= record.started_ns and t["root_service"] == "reviews"
        ]
        counts = [
            span["attributes"].get(ATTRIBUTE)
            for trace in traced[:10]
            for span in stack.telemetry.trace(trace["trace_id"])
            if span["name"] == SPAN
        ]
        scraped = stack.prometheus.value('sum(up{job="workshop", service="reviews"})')
        counted = stack.prometheus.grown(f'{COUNTER}{{service="reviews"}}', record.started_at)
        return [
            Step(
                "the reviews service answers",
                answered == 200,
                "It does not answer GET /reviews/1: a mistake in your file stops it."
                " Its log (.obslab/run/labs/05/reviews.log) says which line; save the"
                " file again once fixed and it reloads.",
                f"status {answered}" if answered else "no answer",
            ),
            Step(
                f"its requests are traced: a trace of GET {ROUTE} since the lab started",
                bool(traced),
                "Step 3: let obskit instrument the app (`obskit.instrument_service`),"
                " save, and call the service again; a trace reaches the store within 5 s.",
            ),
            Step(
                f"a span {SPAN} in those traces",
                bool(counts),
                f"Step 4: open a span named {SPAN} around the work of summarise(), with"
                " the tracer of `opentelemetry.trace`; then call the service again.",
            ),
            Step(
                f"the span says how many reviews it summarised ({ATTRIBUTE})",
                any(isinstance(c, int) and c > 0 for c in counts),
                f"Set the attribute {ATTRIBUTE} on the span, to the number of ratings"
                " (an integer, not a string).",
                f"seen: {counts[:3]}" if counts else "",
            ),
            Step(
                "Prometheus scrapes the service",
                scraped >= 1,
                "Prometheus reads /metrics every 5 s: instrument_service serves it."
                " Is the lab up (`uv run obslab status`)?",
            ),
            Step(
                f"your counter {COUNTER} counts the summaries",
                counted > 0,
                "Step 5: a prometheus_client Counter named obslab_review_summaries,"
                " incremented in summarise(); call the service, wait a scrape (5 s).",
            ),
        ]

    def reset(self, context: Context) -> None:
        background.stop(context, "reviews")
        _targets(context, [])
        for name in ("reviews.py", "reviews.log"):
            (context.folder() / name).unlink(missing_ok=True)


LAB = Instrument()
