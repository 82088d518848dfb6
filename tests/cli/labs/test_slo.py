"""Lab 9, SLOs and burn rates, played against the shared native lab: the README's
commands and queries, its folded rules file, and the promtool tests that tell a
two-window page from a one-window one. It makes no request fail: no 5xx."""

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

README = readme("09-slo-burn-rates")
BOTH = """\
          lab9:sli_error:ratio_rate1h > 14.4 * (1 - 0.995)
          and
          lab9:sli_error:ratio_rate5m > 14.4 * (1 - 0.995)
"""


def answer_rules() -> str:
    """The rules file of the README's folded answer."""
    (rules,) = [b.code for b in blocks(README) if b.language == "yaml"]
    assert BOTH in rules
    return rules


def test_one_window_pages_fail_each_on_its_own_scenario(lab: Lab) -> None:
    """The scaffold fails; a page on the 5-minute window alone fails only the blip test,
    one on the hour alone only the end-of-burn test, each with its hint; a SLI without
    `or vector(0)` fails the ratios."""
    with started(lab, 9):
        path = lab.settings.path("labs", "09", "slo.yml")
        wait_for(lambda: "served nothing" not in check(lab, 9).stdout, 60, "orders scraped")
        scaffold = check(lab, 9)
        assert scaffold.returncode == 1 and "Hint:" in scaffold.stdout, scaffold.stdout
        variants = {
            "5m": ("✗ Lab9AvailabilityFastBurn does not page for a two-minute blip", "blip"),
            "1h": ("✗ Lab9AvailabilityFastBurn stops paging soon", "fire is out"),
        }
        for window, (failed, hint) in variants.items():
            alone = f"          lab9:sli_error:ratio_rate{window} > 14.4 * (1 - 0.995)\n"
            path.write_text(answer_rules().replace(BOTH, alone))
            one = check(lab, 9)
            assert one.returncode == 1 and one.stdout.count("✗") == 1, one.stdout
            assert failed in one.stdout and hint in one.stdout.split("Hint:")[1], one.stdout
        path.write_text(answer_rules().replace("or vector(0)\n", ""))
        no_zero = check(lab, 9)
        assert "✗ the two ratios are right" in no_zero.stdout, no_zero.stdout


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 9's README runs against the lab, and its folded
    rules file passes the check."""
    assert checks_with(README, 9)
    with resetting(lab, 9):
        follow(lab, README, lambda name, _: pytest.fail(f"no placeholder expected: {name}"))
        assert run_queries(lab, README) == 3
        lab.settings.path("labs", "09", "slo.yml").write_text(answer_rules())
        wait_for(lambda: check(lab, 9).returncode == 0, 60, "lab 9's check passes")
    assert not lab.settings.path("labs", "09", "slo.yml").exists()
