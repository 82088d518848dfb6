"""A function's spans, log records and metrics reach the collector before the handler
returns: a process killed right after its answer, as Lambda may reclaim a frozen
environment, has lost nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otlp import OTLPReceiver

REPO = Path(__file__).resolve().parents[2]

#: Invoke the real handler module once, say so, then wait for stdin (never written):
#: the test kills it there, so nothing exported at exit can count.
INVOKE_THEN_FREEZE = """
import json, sys, obskit
from payments.function import handler
settings = handler.app.state.settings
event = json.load(open("services/payments/events/create-charge.json"))
key = settings.service_token_key.get_secret_value()
event["headers"]["authorization"] = "Bearer " + obskit.service_token(key, "tests", "payments")
response = handler(event, obskit.LocalContext(handler.name))
print("returned", response["statusCode"], flush=True)
sys.stdin.read()
"""


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    started = OTLPReceiver()
    yield started
    started.close()


def test_every_signal_is_exported_before_the_handler_returns(
    receiver: OTLPReceiver, database_url: str
) -> None:
    """With batch processors that would wait ten minutes, the invocation's spans, its
    request log line and the function's metrics have arrived when the handler returns."""
    env = {
        **os.environ,
        "OBSLAB_DATABASE_URL": database_url,
        "OBSLAB_BANK_LATENCY_MS": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        # Only a flush can send anything within the test.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_BLRP_SCHEDULE_DELAY": "600000",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", INVOKE_THEN_FREEZE],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        # The service's own log lines come first; the probe's line is the last.
        lines = iter(process.stdout.readline, "")
        answer = next(line for line in lines if line.startswith("returned"))
        # No polling: whatever was flushed arrived before the handler returned.
        spans = {span.name for span in receiver.spans}
        logs = {record.body for record in receiver.logs}
        metrics = {name for _, name in receiver.metrics}
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert answer.split() == ["returned", "201"]
    assert {"function.init", "obslab-payments", "POST /charges", "bank.authorize"} <= spans
    assert {"http.request", "payment.succeeded"} <= logs
    assert {"faas.invoke_duration", "faas.init_duration", "faas.coldstarts"} <= metrics
