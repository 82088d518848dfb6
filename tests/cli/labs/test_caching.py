"""Lab 10, caching, played against the shared native lab: the catalog's Redis taken
away, reads still answered from PostgreSQL, the cache hitting again once healed. The
lab makes no 5xx; while it runs it raises ChaosFaultActive and, with enough reads,
CacheHitRatioCollapsed, both resolved within a minute of the reset."""

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

README = readme("10-caching")


def test_the_check_fails_with_a_hint_for_a_learner_who_does_nothing(lab: Lab) -> None:
    """Started with no reads, lab 10's check fails (exit 1) on the reads never made, with
    a hint to read products."""
    with started(lab, 10):
        idle = check(lab, 10)
        assert idle.returncode == 1, idle.stdout
        assert "✗ you read products while the cache was down" in idle.stdout
        assert "Hint: Read some products" in idle.stdout


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 10's README runs against the lab; every read is
    answered, and once Prometheus has scraped the reads after the healing the check
    passes."""
    assert checks_with(README, 10)

    def passes_after_reads() -> bool:
        # What the hint says: read the same products again (hits, now).
        for product in (1, 2, 3):
            httpx.get(f"{lab.edge}/api/products/{product}", timeout=10)
        return check(lab, 10).returncode == 0

    with resetting(lab, 10):
        transcript = follow(lab, README, lambda name, _: pytest.fail(name))
        assert transcript.count(": 200 ") == 48 and "cache.unavailable" in transcript
        assert run_queries(lab, README) == 2
        wait_for(passes_after_reads, 60, "lab 10's check passes")
