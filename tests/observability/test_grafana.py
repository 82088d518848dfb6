"""Grafana's provisioning: datasources that link to one another by stable uids, and
dashboards whose every reference and PromQL query holds."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.observability import checks
from tests.observability.checks import COMPOSE_FILE, OBSERVABILITY

GRAFANA = OBSERVABILITY / "grafana"
PROVISIONING = GRAFANA / "provisioning"
DASHBOARDS = GRAFANA / "dashboards"


@pytest.fixture(scope="module")
def model() -> checks.Model:
    return checks.compose_config(COMPOSE_FILE, {**os.environ, "GRAFANA_ADMIN_PASSWORD": "test"})


def test_provisioning_and_dashboards_are_consistent(model: checks.Model) -> None:
    """Every uid named exists, panel ids are unique, every PromQL query parses, and each
    datasource points at a compose service."""
    assert sorted(DASHBOARDS.glob("*.json"))
    assert checks.check_grafana(PROVISIONING, DASHBOARDS, model) == []


def test_the_signals_link_to_one_another() -> None:
    """Exemplars and log lines open Jaeger; a trace opens its logs and its metrics."""
    datasources, _ = checks.provisioned_datasources(PROVISIONING)
    assert set(datasources) == {"prometheus", "loki", "jaeger"}
    prometheus = datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert prometheus[0]["datasourceUid"] == "jaeger"
    assert datasources["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "jaeger"
    jaeger = datasources["jaeger"]["jsonData"]
    assert jaeger["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert jaeger["tracesToMetrics"]["datasourceUid"] == "prometheus"


def test_the_dashboards_folder_is_the_one_grafana_mounts(model: checks.Model) -> None:
    """The dashboard provider reads the folder where compose mounts the dashboards."""
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yaml").read_text())
    mounts = {
        volume["target"]: volume.get("source") for volume in model["services"]["grafana"]["volumes"]
    }
    path = provider["providers"][0]["options"]["path"]
    assert mounts.get(path) == str(DASHBOARDS)


def test_the_overview_shows_red_per_service_and_orders() -> None:
    """The shop overview has RED from the recording rules over
    http_server_request_duration_seconds, its buckets for exemplars, and orders per minute."""
    text = (DASHBOARDS / "shop-overview.json").read_text()
    assert "service:http_server_requests:rate1m" in text
    assert "http_server_request_duration_seconds_bucket" in text
    assert "obslab_orders_placed_total" in text


def test_the_overview_shows_logs_and_a_metric_from_logs() -> None:
    """The overview has Loki queries, so the LogQL check checks something real."""
    dashboard = json.loads((DASHBOARDS / "shop-overview.json").read_text())
    logql = [expr for _, kind, expr in checks.queries_of(dashboard) if kind == "loki"]
    assert any("count_over_time" in expr for expr in logql)
    assert any("severity_text" in expr for expr in logql)


def test_grafanas_logql_grammar_tells_good_from_bad() -> None:
    """The npm parser accepts valid LogQL and reports where invalid LogQL breaks."""
    verdicts = checks.parse_logql(
        ['{service_name="orders"} |= "order.failed"', 'sum(rate({service_name="orders"}[1m])']
    )
    assert verdicts[0] == {"ok": True}
    assert verdicts[1]["ok"] is False
    assert verdicts[1]["position"] > 0


def broken_copy(tmp_path: Path, change: Callable[[str], str]) -> tuple[Path, Path]:
    provisioning = tmp_path / "provisioning"
    dashboards = tmp_path / "dashboards"
    shutil.copytree(PROVISIONING, provisioning)
    shutil.copytree(DASHBOARDS, dashboards)
    path = dashboards / "shop-overview.json"
    path.write_text(change(path.read_text()))
    return provisioning, dashboards


def _duplicate_id(text: str) -> str:
    dashboard = json.loads(text)
    dashboard["panels"][2]["id"] = dashboard["panels"][1]["id"]
    return json.dumps(dashboard)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.replace("[$__rate_interval]))", "[$__rate_interval])", 1), "does not parse"),
        (_duplicate_id, "panel id 2 is used twice"),
        (lambda t: t.replace('"uid": "loki"', '"uid": "logs"', 1), "unknown datasource uid logs"),
        (lambda t: t.rstrip()[:-1], "not valid JSON"),
        (
            lambda t: t.replace(" [1m]))", " [1m))", 1),
            "panel 'Error log lines per minute, by service': LogQL",
        ),
        (lambda t: t.replace('"allValue": ".+"', '"allValue": ".*"', 1), "matches empty labels"),
    ],
)
def test_a_dashboard_mistake_is_named(
    model: checks.Model, tmp_path: Path, change: Callable[[str], str], problem: str
) -> None:
    """Bad PromQL or LogQL, a Loki selector Loki refuses, a duplicate panel id, an unknown
    datasource or broken JSON is reported with the dashboard's file name (and the panel's)."""
    provisioning, dashboards = broken_copy(tmp_path, change)
    problems = checks.check_grafana(provisioning, dashboards, model)
    assert any(problem in p and "shop-overview.json" in p for p in problems), problems


def test_a_dangling_datasource_link_is_named(model: checks.Model, tmp_path: Path) -> None:
    """A datasource linking to a uid that is not provisioned is reported with its file."""
    provisioning, dashboards = broken_copy(tmp_path, lambda t: t)
    path = provisioning / "datasources" / "datasources.yaml"
    path.write_text(path.read_text().replace("datasourceUid: loki", "datasourceUid: logs"))
    problems = checks.check_grafana(provisioning, dashboards, model)
    assert any(
        "jaeger links to unknown uid logs" in p and "datasources.yaml" in p for p in problems
    )
