"""The alert and recording rules of both profiles: generated from one source and kept in
step with it, accepted and unit-tested by promtool, every alert with a runbook."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import promql_parser
import pytest
import yaml

from obslab.native.lab import LabSettings, plan
from tests.observability import checks
from tests.observability.checks import COMPOSE_FILE, OBSERVABILITY, REPO

PROMETHEUS = OBSERVABILITY / "prometheus"
RUNBOOKS = OBSERVABILITY / "runbooks"
PROFILES = ("lab", "production")


def _generator() -> ModuleType:
    """observability/prometheus/generate.py, a script rather than a package module."""
    name = "obslab_rules_generate"
    spec = importlib.util.spec_from_file_location(name, PROMETHEUS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generate = _generator()


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def alerts_of(profile: str) -> dict[str, dict[str, Any]]:
    """Every alerting rule of a profile's rule files, by name."""
    return {
        rule["alert"]: rule
        for path in sorted((PROMETHEUS / "rules" / profile).glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_the_committed_rules_are_what_the_generator_writes() -> None:
    """The rule files and unit tests are regenerated from slo.yaml and alerts.yaml and
    must equal the committed ones, so the two cannot drift."""
    stale = [
        str(path.relative_to(REPO))
        for path, text in generate.generate().items()
        if not path.is_file() or path.read_text() != text
    ]
    assert stale == [], "stale, run `uv run python observability/prometheus/generate.py`"


@pytest.mark.parametrize("profile", PROFILES)
def test_promtool_accepts_the_rules(profile: str) -> None:
    """promtool check rules accepts every rule file of the profile."""
    files = sorted((PROMETHEUS / "rules" / profile).glob("*.yml"))
    assert {path.name for path in files} == {"red.yml", "slo.yml", "alerts.yml"}
    checked = run("promtool", "check", "rules", *map(str, files))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("profile", PROFILES)
def test_promtool_unit_tests_pass(profile: str) -> None:
    """Each alert fires on the series of its symptom and stays silent in steady state."""
    checked = run("promtool", "test", "rules", f"{profile}.yml", cwd=PROMETHEUS / "tests")
    assert checked.returncode == 0, f"tests/{profile}.yml:\n{checked.stdout}{checked.stderr}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_alert_has_a_test_that_fires_and_one_that_does_not(profile: str) -> None:
    """No alert in the rules goes untested, either way."""
    tests = yaml.safe_load((PROMETHEUS / "tests" / f"{profile}.yml").read_text())["tests"]
    cases = [case for group in tests for case in group["alert_rule_test"]]
    for alert in alerts_of(profile):
        assert any(c["alertname"] == alert and c["exp_alerts"] for c in cases), alert
        assert any(c["alertname"] == alert and not c["exp_alerts"] for c in cases), alert


@pytest.mark.parametrize("profile", PROFILES)
def test_every_alert_has_severity_service_value_and_runbook(profile: str) -> None:
    """Each alert carries a known severity, a `service` label on what it fires with, a
    summary, a description quoting the value, and a link to its runbook."""
    tests = yaml.safe_load((PROMETHEUS / "tests" / f"{profile}.yml").read_text())["tests"]
    fired = [
        (case["alertname"], expected["exp_labels"])
        for group in tests
        for case in group["alert_rule_test"]
        for expected in case["exp_alerts"]
    ]
    for name, rule in alerts_of(profile).items():
        assert rule["labels"]["severity"] in ("page", "ticket", "info"), name
        assert all("service" in labels for alert, labels in fired if alert == name), name
        annotations = rule["annotations"]
        assert annotations["summary"], name
        assert "$value" in annotations["description"], name
        assert annotations["runbook_url"] == f"observability/runbooks/{name}.md", name


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    """observability/runbooks/ holds exactly one runbook per alert, with its sections."""
    alerts = set(alerts_of("lab"))
    assert alerts == set(alerts_of("production"))
    runbooks = {path.stem for path in RUNBOOKS.glob("*.md")} - {"README"}
    assert sorted(alerts - runbooks) == [], "alerts without a runbook"
    assert sorted(runbooks - alerts) == [], "runbooks without an alert"
    for name in alerts:
        text = (RUNBOOKS / f"{name}.md").read_text()
        for section in ("## What it means", "## Dashboard", "## PromQL", "## LogQL"):
            assert section in text, f"{name}.md has no {section!r}"
        assert "## Likely causes" in text and "## Mitigation" in text, name


def _panel_titles(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["title"]] if node.get("type") not in (None, "row") and "title" in node else []
        return own + [title for value in node.values() for title in _panel_titles(value)]
    if isinstance(node, list):
        return [title for value in node for title in _panel_titles(value)]
    return []


def test_every_runbook_opens_dashboards_and_panels_that_exist() -> None:
    """A runbook's Dashboard section names dashboards by uid (`obslab-slo`) and quotes
    the start of panel titles ("Burn rate per window"): each uid is a dashboard, and
    each quoted title begins a panel of one of the dashboards the section names."""
    dashboards = {
        board["uid"]: _panel_titles(board)
        for path in (OBSERVABILITY / "grafana" / "dashboards").glob("*.json")
        if (board := json.loads(path.read_text()))
    }
    for path in sorted(RUNBOOKS.glob("*.md")):
        if path.stem == "README":
            continue
        section = path.read_text().split("## Dashboard", 1)[1].split("\n## ", 1)[0]
        uids = re.findall(r"`(obslab-[a-z-]+)`", section)
        assert all(uid in dashboards for uid in uids), (path.name, uids)
        titles = [title for uid in uids for title in dashboards[uid]]
        for quoted in re.findall(r'"([^"]+)"', section):
            assert any(title.startswith(quoted) for title in titles), (path.name, quoted)
        assert uids or "Targets page" in section, f"{path.name} names no dashboard"


def test_the_lab_profile_fires_within_about_a_minute() -> None:
    """No lab alert waits more than a minute (`for:`), and no lab window exceeds the
    lab's one-hour budget period."""
    for name, rule in alerts_of("lab").items():
        assert generate.seconds(rule.get("for", "0s")) <= 60, name
    text = "".join(path.read_text() for path in (PROMETHEUS / "rules" / "lab").glob("*.yml"))
    windows = re.findall(r"\[(\d+[smhd])\]|ratio_rate(\d+[smhd])", text)
    assert max(generate.seconds(a or b) for a, b in windows) <= 3600


def test_the_production_profile_keeps_the_sre_workbook_windows() -> None:
    """Production pages at 14.4x over 1h and 5m and 6x over 6h and 30m, tickets at 1x
    over 3d and 6h, and keeps the budget over slo.yaml's 30 days."""
    rules = alerts_of("production")
    page = rules["SLOAvailabilityFastBurn"]["expr"]
    for window in ("1h", "5m", "6h", "30m"):
        assert f"ratio_rate{window}{{" in page
    assert "14.4 * 0.005" in page and "6 * 0.005" in page
    ticket = rules["SLOLatencySlowBurn"]["expr"]
    assert "ratio_rate3d{" in ticket and "ratio_rate6h{" in ticket and "1 * 0.01" in ticket
    slo = (PROMETHEUS / "rules" / "production" / "slo.yml").read_text()
    assert "slo:error_budget:remaining_ratio" in slo and "ratio_rate30d" in slo


def test_red_keeps_the_names_dashboards_use() -> None:
    """RED per service and per route is recorded under level:metric:operations names,
    the per-service names unchanged from before the rules were generated."""
    red = (PROMETHEUS / "rules" / "lab" / "red.yml").read_text()
    for level in ("service", "service_route"):
        for name in (
            "http_server_requests:rate1m",
            "http_server_errors:ratio_rate1m",
            "http_server_request_duration_seconds:p50_1m",
            "http_server_request_duration_seconds:p95_1m",
            "http_server_request_duration_seconds:p99_1m",
        ):
            assert f"record: {level}:{name}\n" in red


def test_target_missing_watches_every_scraped_service() -> None:
    """TargetMissing names exactly the services the scrape targets list."""
    targets = json.loads((PROMETHEUS / "targets-compose" / "services.json").read_text())
    scraped = {group["labels"]["service"] for group in targets}
    expr = alerts_of("lab")["TargetMissing"]["expr"]
    assert set(re.findall(r'service="(\w+)"', expr)) == scraped


def test_the_lab_and_compose_load_the_lab_profile(tmp_path: Path) -> None:
    """The native lab copies rules/lab/ into its Prometheus, and compose mounts it."""
    plan(LabSettings(runtime_dir=tmp_path))
    loaded = {path.name for path in (tmp_path / "prometheus" / "rules").glob("*.yml")}
    assert loaded == {"red.yml", "slo.yml", "alerts.yml"}
    assert (tmp_path / "prometheus" / "rules" / "slo.yml").read_text() == (
        PROMETHEUS / "rules" / "lab" / "slo.yml"
    ).read_text()
    model = checks.compose_config(COMPOSE_FILE, {"GRAFANA_ADMIN_PASSWORD": "test", "PATH": ""})
    mounts = {v["target"]: v.get("source") for v in model["services"]["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/rules"] == str(PROMETHEUS / "rules" / "lab")


# ----------------------------------------------------------- the checks catch mistakes


def test_a_rule_that_no_longer_fires_fails_its_unit_test_naming_it(tmp_path: Path) -> None:
    """A threshold changed by mistake makes promtool's unit test fail, naming the test
    group and the alert."""
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    shutil.copytree(PROMETHEUS / "tests", tmp_path / "tests")
    alerts = tmp_path / "rules" / "lab" / "alerts.yml"
    text = alerts.read_text()
    assert "service:http_server_errors:ratio_rate1m > 0.05" in text
    alerts.write_text(text.replace("ratio_rate1m > 0.05", "ratio_rate1m > 0.5"))
    checked = run("promtool", "test", "rules", "lab.yml", cwd=tmp_path / "tests")
    assert checked.returncode != 0
    assert "HighErrorRatio: one request in five fails" in checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda a: a.update(severity="critical"), "ServiceDown: severity must be one of"),
        (lambda a: a.update(description="It is down."), "ServiceDown: the description does"),
        (lambda a: a.update(tests=a["tests"][:1]), "ServiceDown: no test in which it stays"),
        (lambda a: a.update(tests=a["tests"][1:]), "ServiceDown: no test in which it fires"),
    ],
)
def test_an_alert_definition_without_what_it_needs_is_refused(change: Any, problem: str) -> None:
    """The generator refuses an alert with an unknown severity, no value in its
    description, or no firing or no silent test, naming alerts.yaml and the alert."""
    source = copy.deepcopy(yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text()))
    change(source["alerts"][0])
    with pytest.raises(ValueError, match=f"alerts.yaml: {problem}"):
        generate.check_source(source)


def test_the_queries_in_the_runbooks_parse() -> None:
    """Every PromQL line of a runbook parses, and every LogQL line parses with Grafana's
    grammar, so a learner can paste them as they are."""
    problems: list[str] = []
    logql: list[tuple[str, str]] = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        text = path.read_text()
        for block in re.findall(r"```promql\n(.*?)```", text, re.S):
            for line in block.splitlines():
                try:
                    promql_parser.parse(checks.substitute(line))
                except ValueError as error:
                    problems.append(f"{path.name}: PromQL {line!r}: {error}")
        for block in re.findall(r"```logql\n(.*?)```", text, re.S):
            logql += [(path.name, line) for line in block.splitlines()]
    assert logql
    verdicts = checks.parse_logql([checks.substitute(line) for _, line in logql])
    for (name, line), verdict in zip(logql, verdicts, strict=True):
        if not verdict["ok"]:
            problems.append(f"{name}: LogQL {line!r} does not parse at {verdict['position']}")
    assert problems == []
