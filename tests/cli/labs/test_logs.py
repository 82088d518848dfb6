"""Lab 4, logs, played against the shared native lab: a declined payment among a few
orders, found in the payments log and followed by trace id as the README teaches.
The declined card is a 402, not a 5xx: no alert of the lab counts it."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.labs.readme import check, checks_with, follow, readme, resetting, started
from tests.support.backends import wait_for
from tests.support.lab import Lab

pytestmark = pytest.mark.e2e

README = readme("04-logs")
FAILED_ORDER = {"gateway", "orders", "inventory", "payments"}


def test_a_wrong_answer_fails_with_a_hint(lab: Lab) -> None:
    """Started and left alone, lab 4's check fails with a hint; an answer with a made-up
    trace id fails too, and one that is no order id is refused."""
    with started(lab, 4):
        idle = check(lab, 4)
        assert idle.returncode == 1 and "Hint:" in idle.stdout, idle.stdout
        made_up = ["0" * 32, "00000000-0000-0000-0000-000000000000"]
        assert lab.obslab("lab", "answer", "4", *made_up).returncode == 0
        wrong = check(lab, 4)
        assert wrong.returncode == 1 and "✗ the trace id" in wrong.stdout, wrong.stdout
        refused = lab.obslab("lab", "answer", "4", "0" * 32, "order-1")
        assert refused.returncode == 2 and "not an order id" in refused.stderr


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Following lab 4's README, the trace id of the payments log's declined line and the
    order id its log lines name are the answer the check accepts."""
    assert checks_with(README, 4)

    def lines(trace_id: str) -> list[dict[str, object]]:
        shown = lab.obslab("logs", "--trace", trace_id, "--json")
        return list(json.loads(shown.stdout)) if shown.returncode == 0 else []

    def fill(name: str, transcript: str) -> str:
        if name == "trace id":
            declined = [line for line in transcript.splitlines() if "payment.declined" in line]
            trace_id = re.findall(r'"trace_id": "([0-9a-f]{32})"', declined[-1])[0]
            # A learner reads them once the exporters sent them (a few seconds).
            wait_for(
                lambda: {line["service"] for line in lines(trace_id)} >= FAILED_ORDER,
                60,
                "the failed order's log lines in the store",
            )
            return trace_id
        assert name == "order id", name
        return re.findall(r'"order_id": "([0-9a-f-]{36})"', transcript)[-1]

    with resetting(lab, 4):
        transcript = follow(lab, README, fill)
        assert "order.failed" in transcript and "card_declined" in transcript
        passed = check(lab, 4)
        assert passed.returncode == 0, passed.stdout
