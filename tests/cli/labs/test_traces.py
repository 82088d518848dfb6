"""Lab 2, traces, played against the shared native lab: a slowdown hidden in a random
service of the checkout, found from the traces as the README teaches (self time), and
the check that judges the answer without giving it away.

Each test leaves one chaos fault behind for at most the test's length: `lab reset 2`
removes it. No request fails (a slowdown, short of every timeout): no 5xx."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import pytest

from tests.cli.labs.readme import check, checks_with, follow, readme, resetting, started
from tests.support.backends import wait_for
from tests.support.lab import Lab

pytestmark = pytest.mark.e2e

README = readme("02-traces")
SHOP = {"gateway", "orders", "inventory", "payments", "notifications"}


def slow_traces(lab: Lab, since_ns: int) -> list[dict[str, Any]]:
    listed = lab.obslab("traces", "--route", "/api/orders", "--min-ms", "500", "--json")
    assert listed.returncode == 0, listed.stderr
    return [t for t in json.loads(listed.stdout) if t["start_ns"] >= since_ns]


def self_time(spans: list[dict[str, Any]]) -> dict[tuple[str, bool], float]:
    """Milliseconds of each span not covered by its children, by (service, is a query)."""
    children: dict[str, float] = defaultdict(float)
    for span in spans:
        children[span["parent_span_id"]] += span["duration_ms"]
    totals: dict[tuple[str, bool], float] = defaultdict(float)
    for span in spans:
        query = span["attributes"].get("db.system") == "postgresql"
        own = max(0.0, span["duration_ms"] - children[span["span_id"]])
        totals[span["service"], query] += own
    return totals


def diagnose(lab: Lab, trace_ids: list[str]) -> tuple[str, str]:
    """The service with the most self time over these traces, and whether its time is
    in its database queries or in its own code."""
    totals: dict[tuple[str, bool], float] = defaultdict(float)
    for trace_id in trace_ids:
        shown = lab.obslab("trace", trace_id, "--json")
        for key, ms in self_time(json.loads(shown.stdout)["spans"]).items():
            totals[key] += ms
    by_service: dict[str, float] = defaultdict(float)
    for (service, _), ms in totals.items():
        by_service[service] += ms
    service = max(by_service, key=lambda s: by_service[s])
    cause = "database" if totals[service, True] > totals[service, False] else "code"
    return service, cause


def test_a_wrong_answer_fails_with_a_hint_that_names_no_service(lab: Lab) -> None:
    """With nothing answered, or the gateway (never the slow one) answered, lab 2's check
    fails (exit 1) with a hint, and no hint names the hidden service."""
    with started(lab, 2):
        hidden = json.loads(lab.settings.path("labs", "progress.json").read_text())["2"]
        slow = hidden["setup"]["service"]
        idle = check(lab, 2)
        assert idle.returncode == 1 and "Hint:" in idle.stdout, idle.stdout
        assert lab.obslab("lab", "answer", "2", "gateway", "code").returncode == 0
        wrong = check(lab, 2)
        assert wrong.returncode == 1 and "✗ the slow service" in wrong.stdout, wrong.stdout
        for said in (idle.stdout, wrong.stdout):
            assert slow not in said.split("Hint:")[1]
        refused = lab.obslab("lab", "answer", "2", "payments", "network")
        assert refused.returncode == 2 and "database" in refused.stderr


def test_a_learner_who_reads_the_self_time_finds_the_slow_service(lab: Lab) -> None:
    """Following lab 2's README on a few slow checkouts, the service with the most self
    time and where that time is (queries or code) is the answer the check accepts."""
    assert checks_with(README, 2)
    since = time.time_ns()
    found: dict[str, str] = {}

    def fill(name: str, transcript: str) -> str:
        if name == "trace id":
            # The orders start placed, once every service's spans reached the store
            # (the worker's come last, after the hop through the broker).
            def complete() -> list[dict[str, Any]]:
                return [t for t in slow_traces(lab, since) if set(t["services"]) >= SHOP]

            wait_for(lambda: len(complete()) >= 3, 60, "three slow checkouts stored")
            traces = complete()
            found["service"], found["cause"] = diagnose(lab, [t["trace_id"] for t in traces])
            return str(traces[0]["trace_id"])
        return found[name]

    with resetting(lab, 2):
        follow(lab, README, fill)
        passed = check(lab, 2)
        hidden = json.loads(lab.settings.path("labs", "progress.json").read_text())["2"]
        assert passed.returncode == 0, (found, hidden["setup"], passed.stdout)
    assert lab.obslab("chaos", "list", "--json").stdout.strip() == "[]"
