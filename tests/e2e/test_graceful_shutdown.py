"""SIGTERM lets in-flight work finish and flushes telemetry before the process exits."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.auth import service_headers
from tests.support.backends import Backends, wait_for
from tests.support.otlp import OTLPReceiver
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def active_posts(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    found = re.search(
        r'^http_server_active_requests\{http_request_method="POST"\} (\S+)$', metrics, re.MULTILINE
    )
    return float(found.group(1)) if found else 0.0


def test_sigterm_finishes_the_charge_in_flight_and_exports_its_spans(
    backends: Backends, otlp: OTLPReceiver, tmp_path: Path
) -> None:
    """A charge that is waiting on a slow bank when payments gets SIGTERM still completes
    with 201, the lifespan shuts down cleanly, and the spans reach the collector."""
    stack = Stack(
        postgres_url=backends.postgres_url,
        redis_url=f"{backends.redis_url}/13",
        amqp_url=backends.amqp_url,
        otlp_endpoint=otlp.endpoint,
        log_dir=tmp_path,
        env={"OBSLAB_BANK_LATENCY_MS": "1500", "OBSLAB_BANK_LATENCY_JITTER": "0"},
    )
    try:
        stack.start("payments")
        url = stack.urls["payments"]
        charge = {
            "order_id": str(uuid.uuid4()),
            "amount_cents": 1200,
            "currency": "USD",
            "card": {"number": "4242424242424242", "expiry": "12/39", "cvc": "123"},
        }
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(
                httpx.post,
                f"{url}/charges",
                json=charge,
                headers=service_headers("payments"),
                timeout=30,
            )
            wait_for(lambda: active_posts(url) >= 1, 15, "the charge in flight")
            stack.stop("payments")
            response = pending.result()
        assert response.status_code == 201
        # uvicorn re-raises SIGTERM once it is done, so the exit code says "signal";
        # the lifespan's own last word is what proves the shutdown was clean.
        events = [line["event"] for line in stack.logs("payments")]
        assert "Application shutdown complete." in events
        spans = otlp.trace(response.headers["x-trace-id"])
        assert any(span.service == "payments" and span.name.startswith("POST") for span in spans)
    finally:
        stack.close()
