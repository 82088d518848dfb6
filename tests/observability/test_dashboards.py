"""The dashboards as observability/grafana/generate.py makes them: the committed JSON is
what it writes, every panel explains itself, and each dashboard shows what issue 6 asks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import promql_parser
import pytest
import yaml

from tests.observability import checks
from tests.observability.checks import OBSERVABILITY

GRAFANA = OBSERVABILITY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
RULES = OBSERVABILITY / "prometheus" / "rules"
UIDS = {
    "shop-overview.json": "obslab-shop-overview",
    "service-detail.json": "obslab-service",
    "resilience.json": "obslab-resilience",
    "slo.json": "obslab-slo",
    "infrastructure.json": "obslab-infrastructure",
    "load-test.json": "obslab-load",
}


def load(name: str) -> checks.Model:
    return dict(json.loads((DASHBOARDS / name).read_text()))


def exprs(name: str) -> list[str]:
    return [expr for _, _, expr in checks.queries_of(load(name))]


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    """generate.py --check passes: nobody edited the JSON by hand, or forgot to regenerate."""
    checked = subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert {path.name for path in DASHBOARDS.glob("*.json")} == set(UIDS)


@pytest.mark.parametrize("name", sorted(UIDS))
def test_every_panel_has_a_description_a_unit_and_thresholds(name: str) -> None:
    """Each panel says what it shows and why it matters; each metric panel has a unit and
    thresholds, so a learner reads seconds as seconds and sees where trouble starts."""
    dashboard = load(name)
    assert dashboard["uid"] == UIDS[name]
    for panel in checks.panels_of(dashboard):
        if panel["type"] == "row":
            continue
        assert panel.get("description"), f"{name}: {panel['title']!r} has no description"
        if panel["type"] != "logs":
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults.get("unit"), f"{name}: {panel['title']!r} has no unit"
            assert defaults["thresholds"]["steps"], f"{name}: {panel['title']!r}"
    for variable in dashboard["templating"]["list"]:
        assert variable.get("description"), f"{name}: variable {variable['name']} undocumented"


@pytest.mark.parametrize("name", sorted(UIDS))
def test_every_dashboard_marks_chaos_faults(name: str) -> None:
    """Injected faults appear as annotations on every dashboard, from obslab_chaos_active,
    with PromQL that parses."""
    (annotation,) = load(name)["annotations"]["list"]
    assert "obslab_chaos_active" in annotation["expr"]
    assert annotation["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    promql_parser.parse(annotation["expr"])


def test_the_overview_has_red_edge_traffic_and_orders() -> None:
    """Shop overview: RED per service (rate and errors from the recording rules the alerts
    read, p99 from the buckets for its exemplars), the edge's traffic, orders per minute."""
    queries = " ".join(exprs("shop-overview.json"))
    for metric in (
        "service:http_server_requests:rate1m",
        "service:http_server_errors:ratio_rate1m",
        "http_server_request_duration_seconds_bucket",
        "nginx_http_requests_total",
        "obslab_orders_placed_total",
    ):
        assert metric in queries
    assert "http_server_request_duration_seconds_count" not in queries, "RED recomputed"


def test_the_service_detail_is_one_service_with_exemplars_and_its_logs() -> None:
    """Service detail: a single-service variable every query uses, latency with exemplars,
    and a Loki logs panel of that service (its trace_id links to the trace)."""
    dashboard = load("service-detail.json")
    (service,) = [v for v in dashboard["templating"]["list"] if v["name"] == "service"]
    assert (service["multi"], service["includeAll"]) == (False, False)
    panels = [p for p in checks.panels_of(dashboard) if p["type"] != "row"]
    for panel in panels:
        for target in panel["targets"]:
            assert "$service" in target["expr"] or "vector(0)" in target["expr"], panel["title"]
    latency = [p for p in panels if "exemplar" in p["title"]]
    assert latency and all(t.get("exemplar") for t in latency[0]["targets"][:1])
    (logs,) = [p for p in panels if p["type"] == "logs"]
    assert logs["datasource"]["uid"] == "loki"
    assert 'service_name="$service"' in logs["targets"][0]["expr"]


def test_the_resilience_dashboard_covers_breakers_retries_bulkheads_fallbacks() -> None:
    """Resilience: breaker states over time, retries, bulkheads, fallbacks and the
    gateway's rate limits."""
    dashboard = load("resilience.json")
    queries = " ".join(exprs("resilience.json"))
    for metric in (
        "obslab_breaker_state",
        "obslab_breaker_calls_total",
        "obslab_retry_attempts_total",
        "obslab_bulkhead_in_use",
        "obslab_bulkhead_rejected_total",
        "obslab_fallbacks_total",
        "obslab_rate_limited_total",
    ):
        assert metric in queries
    assert any(p["type"] == "state-timeline" for p in checks.panels_of(dashboard))


def recorded(profile: str) -> set[str]:
    return {
        rule["record"]
        for path in sorted((RULES / profile).glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


#: A recording rule's name, level:metric:operations; not a pattern's prefix
#: ("slo:error_budget_burn:rate.+") nor a regex group in label_replace.
RULE_NAME = re.compile(r"\b[a-z_]+:[a-z_]+:[a-z_0-9]+\b(?![.(])")


@pytest.mark.parametrize("profile", ["lab", "production"])
def test_every_recording_rule_a_dashboard_uses_is_recorded_by_both_profiles(profile: str) -> None:
    """Each recording-rule name any dashboard queries is recorded by the profile (rules/lab/
    and rules/production/ differ in their SLO windows), and the SLO dashboard's burn-rate
    pattern finds at least four windows in it: one set of dashboards, both profiles."""
    used = {
        f"{name}: {rule}"
        for name in sorted(UIDS)
        for rule in RULE_NAME.findall(" ".join(exprs(name)))
    }
    assert {entry.split(": ")[0] for entry in used} >= {
        "shop-overview.json",
        "service-detail.json",
        "load-test.json",
        "slo.json",
    }
    missing = sorted(entry for entry in used if entry.split(": ")[1] not in recorded(profile))
    assert missing == [], f"not recorded in rules/{profile}/"
    windows = [n for n in recorded(profile) if re.fullmatch(r"slo:error_budget_burn:rate.+", n)]
    assert len(windows) >= 4
    assert "slo:error_budget:remaining_ratio" in " ".join(exprs("slo.json"))


def test_exemplars_are_asked_of_the_raw_histogram() -> None:
    """A query that shows exemplars reads a histogram's _bucket series: Prometheus keeps
    exemplars on scraped series only, so a recording rule would show none."""
    exemplar_queries = [
        target["expr"]
        for name in sorted(UIDS)
        for panel in checks.panels_of(load(name))
        for target in panel.get("targets", [])
        if target.get("exemplar")
    ]
    assert len(exemplar_queries) >= 4
    for expr in exemplar_queries:
        assert "_bucket" in expr and not RULE_NAME.search(expr), expr


def red_steps(panel: checks.Model) -> list[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [step["value"] for step in steps if step["color"] in ("red", "dark-red")]


def test_the_lines_move_with_slo_yaml_and_alerts_yaml(tmp_path: Path) -> None:
    """The dashboards' thresholds are read from the SLO and alert sources: a checkout whose
    latency threshold, HighErrorRatio and BulkheadSaturated say otherwise gets other lines."""
    observability = tmp_path / "observability"
    (observability / "grafana" / "dashboards").mkdir(parents=True)
    (observability / "prometheus").mkdir()
    shutil.copy(GRAFANA / "generate.py", observability / "grafana")
    slo = (OBSERVABILITY / "slo.yaml").read_text()
    (observability / "slo.yaml").write_text(
        slo.replace("threshold_s: 0.5", "threshold_s: 1.0")
        .replace("p99_ms: 500", "p99_ms: 900")
        .replace("factor: 14.4", "factor: 10")
    )
    alerts = (OBSERVABILITY / "prometheus" / "alerts.yaml").read_text()
    (observability / "prometheus" / "alerts.yaml").write_text(
        alerts.replace("ratio_rate1m > 0.05", "ratio_rate1m > 0.1").replace(">= 0.9", ">= 0.8")
    )
    generated = subprocess.run(
        [sys.executable, str(observability / "grafana" / "generate.py")],
        env={**os.environ, "OBSLAB_REPO": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr

    def titled(name: str, start: str) -> checks.Model:
        dashboard = json.loads((observability / "grafana" / "dashboards" / name).read_text())
        (found,) = [p for p in checks.panels_of(dashboard) if p["title"].startswith(start)]
        return found

    assert red_steps(titled("shop-overview.json", "Duration: p99")) == [1]
    assert red_steps(titled("shop-overview.json", "Errors")) == [0.1]
    assert "above 10%" in titled("shop-overview.json", "Errors")["description"]
    assert red_steps(titled("resilience.json", "Bulkhead slots")) == [0.8]
    assert red_steps(titled("slo.json", "Burn rate per window")) == [6, 10]


def test_the_infrastructure_dashboard_covers_pools_redis_rabbitmq_outbox() -> None:
    """Infrastructure: PostgreSQL pools, Redis, RabbitMQ queues and the DLQ, the outbox."""
    queries = " ".join(exprs("infrastructure.json"))
    for metric in (
        "obslab_pool_connections",
        "redis_commands_processed_total",
        "rabbitmq_queue_messages_ready",
        ".+\\\\.dlq",
        "obslab_outbox_backlog",
    ):
        assert metric in queries, metric


def test_the_load_test_dashboard_sets_k6_beside_the_services() -> None:
    """Load test: k6's remote-written metrics and the services' own, on one dashboard."""
    queries = " ".join(exprs("load-test.json"))
    assert "k6_http_reqs_total" in queries and "k6_http_req_duration_p99" in queries
    assert "http_server_request_duration_seconds" in queries


def test_links_to_the_service_detail_name_its_uid() -> None:
    """The overview's data links open the service detail dashboard by its real uid."""
    text = (DASHBOARDS / "shop-overview.json").read_text()
    assert f"/d/{UIDS['service-detail.json']}/" in text


def test_a_hand_edit_is_caught(tmp_path: Path) -> None:
    """The staleness check is real: a changed committed file makes --check fail."""
    copy = tmp_path / "grafana"
    (copy / "dashboards").mkdir(parents=True)
    (copy / "generate.py").write_text((GRAFANA / "generate.py").read_text())
    for path in DASHBOARDS.glob("*.json"):
        (copy / "dashboards" / path.name).write_text(path.read_text())
    edited = copy / "dashboards" / "slo.json"
    edited.write_text(edited.read_text().replace('"SLOs"', '"My SLOs"', 1))
    checked = subprocess.run(
        [sys.executable, str(copy / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1
    assert "slo.json" in checked.stderr
