"""Lab 8, load testing with k6, played against the shared native lab: payments made
CPU-bound by the lab's start, a breakpoint run to the knee, and the answer (the rate
and the busiest component) judged against what that run wrote. The run places a few
hundred orders: the stock is restored afterwards, and the reset removes the fault."""

from __future__ import annotations

import json

import pytest

from obslab.load import knee
from obslab.load.k6 import read_slo
from tests.cli.labs.readme import (
    check,
    checks_with,
    follow,
    readme,
    resetting,
    run_queries,
    started,
)
from tests.support.lab import Lab

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("stock_restored")]

README = readme("08-load-knee")


def the_knee(lab: Lab) -> dict[str, object]:
    """Where the last breakpoint run's p99 crossed the SLO, from what it wrote."""
    windows = json.loads(lab.settings.path("load", "breakpoint.windows.json").read_text())
    broke = knee.crossing(windows, "p99_ms", read_slo()["place_order"]["p99_ms"], stopped=True)
    assert broke is not None, [(w["t"], w["rate"], w["p99_ms"], w["busiest"]) for w in windows]
    return dict(broke)


def test_no_run_or_a_wrong_answer_fails_with_a_hint(lab: Lab) -> None:
    """Started with no run, the check fails on the missing run; an answer that is not
    a rate is refused with exit 2."""
    with started(lab, 8):
        idle = check(lab, 8)
        assert idle.returncode == 1, idle.stdout
        assert "✗ a breakpoint run since the lab started" in idle.stdout
        assert "Hint: Run the breakpoint test of step 3" in idle.stdout
        refused = lab.obslab("lab", "answer", "8", "fast", "payments")
        assert refused.returncode == 2, refused.stdout + refused.stderr


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 8's README runs against the lab; the breakpoint
    run goes past the knee, and the rate and component its table shows there pass the
    check, where twice that rate and another component do not."""
    assert checks_with(README, 8)

    def fill(name: str, transcript: str) -> str:
        assert "checkout per 10 s" in transcript, transcript
        broke = the_knee(lab)
        if name == "orders per second":
            return f"{broke['rate']:.1f}"
        assert name == "busiest component", name
        return str(broke["busiest"])

    with resetting(lab, 8):
        follow(lab, README, fill)
        assert run_queries(lab, README) == 2
        passed = check(lab, 8)
        assert passed.returncode == 0, passed.stdout

        broke = the_knee(lab)
        other = "gateway-1" if broke["busiest"] != "gateway-1" else "orders"
        answered = lab.obslab("lab", "answer", "8", f"{2 * float(str(broke['rate']))}", other)
        assert answered.returncode == 0, answered.stdout + answered.stderr
        wrong = check(lab, 8)
        assert "✗ the rate you named" in wrong.stdout, wrong.stdout
        assert "✗ the component you named" in wrong.stdout
    assert lab.obslab("chaos", "list", "--json").stdout.strip() == "[]"
