"""Lab 1, the tour, played against the shared native lab: its README's commands and
queries as a learner runs them, and its check."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.labs.readme import (
    check,
    checks_with,
    follow,
    readme,
    resetting,
    run_queries,
    started,
)
from tests.support.backends import wait_for
from tests.support.lab import Lab

pytestmark = pytest.mark.e2e

README = readme("01-tour")
CHECKOUT = {"gateway", "orders", "inventory", "payments"}


def test_the_check_fails_with_a_hint_for_a_learner_who_does_nothing(lab: Lab) -> None:
    """Started and left alone, lab 1's check fails (exit 1) on the missing order with a
    hint, and a made-up trace id given as the answer does not pass it either."""
    with started(lab, 1):
        idle = check(lab, 1)
        assert idle.returncode == 1, idle.stdout + idle.stderr
        assert "✗ you placed an order" in idle.stdout and "Hint:" in idle.stdout
        assert lab.obslab("lab", "answer", "1", "0" * 32).returncode == 0
        assert check(lab, 1).returncode == 1
        refused = lab.obslab("lab", "answer", "1", "not-a-trace-id")
        assert refused.returncode == 2 and "32 hex digits" in refused.stderr


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 1's README runs against the lab, the trace id
    pasted from the order's answer; the check then passes and `lab list` says so."""
    assert checks_with(README, 1)

    def fill(name: str, transcript: str) -> str:
        assert name == "trace id", name
        trace_id = re.findall(r"(?im)^x-trace-id: ([0-9a-f]{32})", transcript)[-1]

        def crossed() -> set[str]:
            shown = lab.obslab("trace", trace_id, "--json")
            spans = json.loads(shown.stdout)["spans"] if shown.returncode == 0 else []
            return {span["service"] for span in spans}

        # A learner reads the trace once the exporters sent it (a few seconds).
        wait_for(lambda: crossed() >= CHECKOUT, 60, "the order's trace in the store")
        return trace_id

    with resetting(lab, 1):
        transcript = follow(lab, README, fill)
        assert "HTTP/1.1 201" in transcript
        assert run_queries(lab, README) == 3
        passed = check(lab, 1)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "✗" not in passed.stdout
        listed = lab.obslab("lab", "list")
        assert re.search(r"│ 1 .*passed", listed.stdout), listed.stdout
    assert "not started" in lab.obslab("lab", "list").stdout
