"""``obslab fn invoke``: a service's Lambda handler run here with recorded events, cold
then warm, and bad input refused with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obslab.cli import app

OBSLAB = Path(sys.executable).with_name("obslab")


def test_recorded_events_are_answered_cold_then_warm(database_url: str, redis_url: str) -> None:
    """In a fresh process the first invocation is the cold start, the next ones are warm,
    and each recorded event gets its answer, on real PostgreSQL and Redis."""
    env = {**os.environ, "OBSLAB_DATABASE_URL": database_url, "OBSLAB_REDIS_URL": redis_url}
    command = [OBSLAB, "fn", "invoke", "--repeat", "2", "--json", "catalog"]
    result = subprocess.run(
        [*command, "get-product", "create-product"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [(a["cold"], a["status"]) for a in answers] == [
        (True, 200),
        (False, 200),
        (False, 201),
        (False, 409),
    ]
    assert answers[0]["body"]["sku"] == "HOOD-SPAN"
    assert answers[0]["init_ms"] > 0 and answers[1]["init_ms"] is None
    # The service's own log lines went to stderr, apart from the answers.
    assert '"event": "http.request"' in result.stderr


def test_an_event_file_is_read_as_given(tmp_path: Path, database_url: str) -> None:
    """An event is also a file anywhere, here a recorded one changed by hand."""
    recorded = Path("services/payments/events/missing-route.json").read_text()
    event = tmp_path / "health.json"
    event.write_text(recorded.replace("/refunds/1", "/health/live"))
    env = {**os.environ, "OBSLAB_DATABASE_URL": database_url}
    result = subprocess.run(
        [OBSLAB, "fn", "invoke", "payments", str(event), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (answer,) = json.loads(result.stdout)
    assert (answer["request"], answer["status"], answer["cold"]) == ("GET /health/live", 200, True)


def test_a_handler_that_cannot_start_is_an_error_not_a_traceback() -> None:
    """When the init phase fails (no database there), the command says why and exits 1."""
    env = {**os.environ, "OBSLAB_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing"}
    result = subprocess.run(
        [OBSLAB, "fn", "invoke", "payments", "read-charge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "The payments handler did not start: ConnectionRefusedError" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gateway", "get-product"], "No function for 'gateway'"),
        (["catalog", "no-such-event"], "No event file no-such-event"),
        (["catalog", "{bad}"], "is not a JSON event"),
        (["catalog", "[]"], "is not an API Gateway HTTP API event"),
    ],
)
def test_bad_input_is_refused_without_a_traceback(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """An unknown service, a missing file or an event that is not one: exit 2, a message
    saying which, and no traceback."""
    if args[1].startswith(("{", "[")):
        path = tmp_path / "event.json"
        path.write_text(args[1])
        args = [args[0], str(path)]
    result = CliRunner().invoke(app, ["fn", "invoke", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
