"""Lab 11, async work, played against the shared native lab: a slow notifications worker,
a backlog in RabbitMQ, and its drain once healed. Orders are confirmed throughout: no
5xx. While it runs the lab raises ChaosFaultActive (the backlog stays under the 100
messages of QueueBacklogGrowing)."""

from __future__ import annotations

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

README = readme("11-async-backlog")


def test_the_check_fails_with_a_hint_for_a_learner_who_does_nothing(lab: Lab) -> None:
    """Started with no orders placed, lab 11's check fails (exit 1) on the backlog that
    never formed, with a hint to place orders."""
    with started(lab, 11):
        idle = check(lab, 11)
        assert idle.returncode == 1, idle.stdout
        assert "✗ at least 15 order events waited" in idle.stdout
        assert "Hint: Place orders faster" in idle.stdout


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 11's README runs against the lab: 20 orders all
    confirmed, a backlog seen, the worker healed; once the backlog drained the check
    passes."""
    assert checks_with(README, 11)
    with resetting(lab, 11):
        # The worker finishes the messages it took while slow (8 s) after the healing:
        # the backlog outlives a scrape of RabbitMQ (5 s), so the check sees its peak.
        transcript = follow(lab, README, lambda name, _: pytest.fail(name))
        assert transcript.count(": 201 ") == 20
        assert run_queries(lab, README) == 3
        wait_for(lambda: check(lab, 11).returncode == 0, 90, "lab 11's check passes")
