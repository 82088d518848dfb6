"""Lab 7, circuit breakers, played against the shared native lab: a slow catalog opens
the gateways' breakers, the stale copy answers, healing closes them; the check reads
it all from Prometheus. Slow calls succeed and open breakers serve the stale copy: no
5xx. While it runs the lab raises CircuitBreakerOpen and ChaosFaultActive, which the
reset resolves (it reads until every breaker is closed)."""

from __future__ import annotations

import httpx
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

README = readme("07-circuit-breakers")


def test_the_check_fails_with_a_hint_until_the_breaker_opens(lab: Lab) -> None:
    """Started with no reads sent, lab 7's check fails (exit 1) on the breaker that never
    opened, with a hint about sending enough reads."""
    with started(lab, 7):
        idle = check(lab, 7)
        assert idle.returncode == 1, idle.stdout
        assert "✗ a gateway's breaker to catalog opened" in idle.stdout
        assert "Hint: Send the reads of step 2" in idle.stdout


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 7's README runs against the lab; with reads sent
    until the breakers' trial calls close them, the check passes."""
    assert checks_with(README, 7)

    def passes_after_reads() -> bool:
        # What the README says to do while a breaker is still open: read again.
        for _ in range(4):
            httpx.get(f"{lab.edge}/api/products", timeout=10)
        return check(lab, 7).returncode == 0

    with resetting(lab, 7):
        transcript = follow(lab, README, lambda name, _: pytest.fail(name))
        assert " catalog-stale\n" in transcript
        assert run_queries(lab, README) == 3
        wait_for(passes_after_reads, 60, "lab 7's check passes")
    assert lab.obslab("chaos", "list", "--json").stdout.strip() == "[]"
