"""The table of alerts and the chaos experiments that prove them (docs/alerts.md):
generated from the rules and the experiments, fresh, and leaving no page unproven."""

from __future__ import annotations

from pathlib import Path

import pytest

from obslab.chaos import proofs

REPO = Path(__file__).parents[2]


def test_the_committed_table_is_the_generated_one() -> None:
    """docs/alerts.md is what obslab.chaos.proofs writes from today's rules and experiments."""
    assert (REPO / "docs" / "alerts.md").read_text() == proofs.render(), (
        "stale, run `uv run python -m obslab.chaos.proofs`"
    )


def test_every_page_has_an_experiment_that_proves_it() -> None:
    """Each page-severity alert is expected by at least one chaos experiment."""
    listed, _ = proofs.proofs()
    pages = [alert for alert in listed if alert.severity == "page"]
    assert pages, "the lab profile has no page alert: the rules were not found"
    assert [alert.name for alert in pages if not alert.proven_by] == []


def test_every_alert_an_experiment_expects_is_a_rule() -> None:
    """No experiment expects an alert that the lab profile does not define."""
    _, unknown = proofs.proofs()
    assert unknown == {}


def test_an_expected_alert_with_a_typo_is_refused(tmp_path: Path) -> None:
    """An experiment that expects an alert no rule defines stops the table being written."""
    text = (REPO / "chaos" / "experiments" / "slow-payments.yaml").read_text()
    (tmp_path / "typo.yaml").write_text(text.replace("CircuitBreakerOpen", "CircuitBreakerOpn"))
    with pytest.raises(ValueError, match="CircuitBreakerOpn"):
        proofs.render(folder=tmp_path)


def test_a_page_without_experiment_is_listed_as_unproven(tmp_path: Path) -> None:
    """With no experiments at all, every alert (pages included) shows no proof."""
    listed, _ = proofs.proofs(folder=tmp_path)
    assert all(not alert.proven_by for alert in listed)
    assert "| ServiceDown | page | — |" in proofs.render(folder=tmp_path)
