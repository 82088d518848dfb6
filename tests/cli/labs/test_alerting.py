"""Lab 6, alerts and runbooks, played against the shared native lab: the learner's alert,
runbook and unit tests, the check's own promtool tests on the rule, and the alert
loaded, tripped by a chaos fault (payments declines every charge: 402, no 5xx) and
delivered to the lab's receiver. The reset unloads the rule and removes the fault."""

from __future__ import annotations

import pytest

from tests.cli.labs.readme import (
    blocks,
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

README = readme("06-alerts-runbooks")
SHARE = """\
          sum(rate(obslab_orders_failed_total{reason="card_declined"}[1m]))
          /
          (sum(rate(obslab_orders_placed_total[1m])) + sum(rate(obslab_orders_failed_total[1m])))
"""


def answers() -> dict[str, str]:
    """The three files of the README's folded answer, by name."""
    yaml_blocks = [b.code for b in blocks(README) if b.language == "yaml"]
    (runbook,) = [b.code for b in blocks(README) if b.language == "markdown"]
    rule, tests = yaml_blocks
    assert SHARE in rule
    return {"alert.yml": rule, "alert_test.yml": tests, "runbook.md": runbook}


def write_answers(lab: Lab, **changed: str) -> None:
    for name, text in {**answers(), **changed}.items():
        lab.settings.path("labs", "06", name).write_text(text)


def test_the_scaffold_and_wrong_rules_fail_with_their_hints(lab: Lab) -> None:
    """The untouched scaffold fails on its empty annotations; a rule that divides by the
    placed orders only, or that has no `for:`, fails the check's own test for it, with
    a hint that does not give the query away."""
    with started(lab, 6):
        scaffold = check(lab, 6)
        assert scaffold.returncode == 1, scaffold.stdout
        assert "Hint: Fill in its summary annotation" in scaffold.stdout, scaffold.stdout

        by_placed = answers()["alert.yml"].replace(
            SHARE,
            '          sum(rate(obslab_orders_failed_total{reason="card_declined"}[1m]))\n'
            "          / sum(rate(obslab_orders_placed_total[1m]))\n",
        )
        write_answers(lab, **{"alert.yml": by_placed})
        wrong = check(lab, 6)
        assert "✗ Lab6CardDeclinesSurge stays silent when fewer than half" in wrong.stdout
        assert "✓ Lab6CardDeclinesSurge fires when 60%" in wrong.stdout, wrong.stdout

        hasty = answers()["alert.yml"].replace("        for: 15s\n", "")
        assert hasty != answers()["alert.yml"]
        write_answers(lab, **{"alert.yml": hasty})
        no_for = check(lab, 6)
        assert "✗ Lab6CardDeclinesSurge waits" in no_for.stdout, no_for.stdout
        assert "✗ your unit tests pass" not in no_for.stdout  # 4m: firing either way

        write_answers(lab, **{"runbook.md": "# Lab6CardDeclinesSurge\n"})
        no_runbook = check(lab, 6)
        assert "✗ its runbook is written" in no_runbook.stdout, no_runbook.stdout


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 6's README runs against the lab, the learner's
    files being the README's folded answer; the alert fires, is delivered, and the
    check passes. The reset unloads the rule and leaves no fault behind."""
    assert checks_with(README, 6)

    def edit() -> bool:
        # Where the learner edits the three files: after `start`, before promtool.
        write_answers(lab)
        return True

    with resetting(lab, 6):
        transcript = follow(
            lab,
            README,
            lambda name, _: pytest.fail(f"no placeholder expected: {name}"),
            wait={"promtool check rules": edit},
        )
        assert "402 402 402" in transcript  # the bank declined the orders
        assert run_queries(lab, README) == 2
        wait_for(lambda: check(lab, 6).returncode == 0, 90, "lab 6's check passes")
    assert not lab.settings.path("prometheus", "rules", "lab6.yml").exists()
    assert lab.obslab("chaos", "list", "--json").stdout.strip() == "[]"
