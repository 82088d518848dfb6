"""Lab 3, metrics and PromQL, played against the shared native lab: the README's queries
and commands, the recording rules its folded answer gives, and a check that tells a
right rule from the usual mistakes. Only successful requests: no 5xx."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
import yaml

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

README = readme("03-metrics-promql")


def rules_file(lab: Lab) -> str:
    return str(lab.settings.path("labs", "03", "rules.yml"))


def answer_rules() -> str:
    """The rules file of the README's folded answer."""
    (rules,) = [b.code for b in blocks(README) if b.language == "yaml"]
    return rules


def with_expr(rules: str, record: str, expr: str) -> str:
    """``rules`` with one rule's expression replaced."""
    loaded = yaml.safe_load(rules)
    for rule in loaded["groups"][0]["rules"]:
        if rule["record"] == record:
            rule["expr"] = expr
    return yaml.safe_dump(loaded)


def test_the_scaffold_and_the_usual_mistakes_fail_with_hints(lab: Lab) -> None:
    """The scaffold lab 3 writes passes promtool but not the rules; an error ratio with
    no `or … * 0`, a rate that keeps every label and a bad expression each fail with a
    hint about that mistake, while the other rules pass."""
    with started(lab, 3):
        path = lab.settings.path("labs", "03", "rules.yml")
        # The orders start placed, once Prometheus scraped them (the check reads 10 s back).
        wait_for(lambda: "served nothing" not in check(lab, 3).stdout, 60, "orders scraped")
        scaffold = check(lab, 3)
        assert scaffold.returncode == 1, scaffold.stdout
        assert "✓ your rules file is valid" in scaffold.stdout and "Hint:" in scaffold.stdout
        requests = 'http_server_request_duration_seconds_count{service="gateway"}[5m]'
        errors = requests.replace("}", ', http_response_status_code=~"5.."}')
        naive_ratio = (
            f"sum by (http_route) (rate({errors})) / sum by (http_route) (rate({requests}))"
        )
        mistakes = {
            "lab3:gateway_errors:ratio_rate5m": (naive_ratio, "0, not nothing"),
            "lab3:gateway_requests:rate5m": (
                f"rate({requests})",
                "which labels",
            ),
        }
        for record, (expr, hint) in mistakes.items():
            path.write_text(with_expr(answer_rules(), record, expr))
            wrong = check(lab, 3)
            assert wrong.returncode == 1, wrong.stdout
            assert f"✗ rule {record}" in wrong.stdout and hint in wrong.stdout, wrong.stdout
        path.write_text(answer_rules().replace("sum by", "sum by by", 1))
        invalid = check(lab, 3)
        assert invalid.returncode == 1 and "promtool says" in invalid.stdout, invalid.stdout


def test_a_learner_who_follows_the_readme_passes(lab: Lab) -> None:
    """Every command and query of lab 3's README runs against the lab, the folded answer
    is a rules file whose three rules match, the exemplar's trace id is accepted, and
    the check passes."""
    assert checks_with(README, 3)
    since = time.time_ns()

    def ours() -> set[str]:
        """The trace ids of the orders placed since the test began, in the store."""
        shown = lab.obslab("traces", "--route", "/api/orders", "-n", "50", "--json")
        return {t["trace_id"] for t in json.loads(shown.stdout) if t["start_ns"] >= since}

    def exemplified() -> bool:
        """Prometheus keeps an exemplar of one of those orders (a scrape after it)."""
        answer = httpx.get(
            f"{lab.prometheus}/api/v1/query_exemplars",
            params={"query": 'http_server_request_duration_seconds_bucket{service="gateway"}'},
        ).json()
        found = {e["labels"]["trace_id"] for s in answer["data"] for e in s["exemplars"]}
        return bool(found & ours())

    def fill(name: str, transcript: str) -> str:
        assert name == "trace id", name
        listed = re.findall(r'"trace_id": "([0-9a-f]{32})"', transcript)
        return [trace_id for trace_id in listed if trace_id in ours()][-1]

    with resetting(lab, 3):
        follow(lab, README, fill, wait={"query_exemplars": exemplified})
        assert run_queries(lab, README) == 5
        lab.settings.path("labs", "03", "rules.yml").write_text(answer_rules())
        # Prometheus scrapes every 5 s: the check reads 10 s in the past.
        wait_for(lambda: check(lab, 3).returncode == 0, 60, "lab 3's check passes")
        assert "✗" not in check(lab, 3).stdout
    assert not lab.settings.path("labs", "03", "rules.yml").exists()
