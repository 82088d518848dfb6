"""The monitoring configs, checked by the tools that will read them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from obslab.native.lab import LabSettings, plan
from obslab.repo import OBSERVABILITY


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configs as the native lab writes them (its plan writes without starting)."""
    runtime = tmp_path_factory.mktemp("lab")
    plan(LabSettings(runtime_dir=runtime))
    return runtime


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_prometheus_config_and_rules_are_valid(rendered: Path) -> None:
    """promtool accepts the Prometheus config with its target lists and the lab's rule
    files, and the rules of both profiles."""
    checked = run("promtool", "check", "config", str(rendered / "prometheus" / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool only warns about a missing target file; the lab writes one for every job.
    assert "WARNING" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr
    assert sorted((rendered / "prometheus" / "rules").glob("*.yml")), "the lab has no rules"
    rules = sorted((OBSERVABILITY / "prometheus" / "rules").glob("*/*.yml"))
    assert rules
    checked = run("promtool", "check", "rules", *map(str, rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alertmanager_config_is_valid() -> None:
    """amtool accepts the Alertmanager config."""
    config = OBSERVABILITY / "alertmanager" / "alertmanager.yml"
    checked = run("amtool", "check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_nginx_config_is_valid(rendered: Path) -> None:
    """nginx -t accepts the edge config as the lab renders it."""
    checked = run(
        "nginx", "-t", "-p", str(rendered / "nginx"), "-c", str(rendered / "nginx" / "nginx.conf")
    )
    assert checked.returncode == 0, checked.stderr


def test_a_broken_prometheus_config_is_refused(rendered: Path, tmp_path: Path) -> None:
    """The check is real: a config with a mistake in it fails and names the problem."""
    broken = tmp_path / "prometheus.yml"
    text = (rendered / "prometheus" / "prometheus.yml").read_text()
    broken.write_text(text.replace("scrape_interval: 5s", "scrape_interval: five"))
    checked = run("promtool", "check", "config", str(broken))
    assert checked.returncode != 0
    assert "five" in checked.stdout + checked.stderr


def test_a_broken_rule_file_is_refused_naming_it(tmp_path: Path) -> None:
    """promtool check rules fails on a rule whose PromQL is broken and names the file."""
    rules = sorted((OBSERVABILITY / "prometheus" / "rules").glob("*/*.yml"))[0]
    broken = tmp_path / rules.name
    text = rules.read_text()
    assert "expr: " in text
    broken.write_text(text.replace("expr: ", "expr: sum(", 1))
    checked = run("promtool", "check", "rules", str(broken))
    assert checked.returncode != 0
    assert rules.name in checked.stdout + checked.stderr


def test_a_broken_alertmanager_config_is_refused_naming_it(tmp_path: Path) -> None:
    """amtool fails on a route to a receiver that does not exist and names the file."""
    config = OBSERVABILITY / "alertmanager" / "alertmanager.yml"
    text = config.read_text()
    assert "\n  receiver: " in text
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(text.replace("\n  receiver: ", "\n  receiver: nobody-", 1))
    checked = run("amtool", "check-config", str(broken))
    assert checked.returncode != 0
    assert "alertmanager.yml" in checked.stdout + checked.stderr
    assert "nobody-" in checked.stdout + checked.stderr


def test_a_broken_nginx_config_is_refused_naming_it(rendered: Path, tmp_path: Path) -> None:
    """nginx -t fails on an unknown directive and names the file and line."""
    text = (rendered / "nginx" / "nginx.conf").read_text()
    assert "upstream gateway {" in text
    broken = tmp_path / "nginx.conf"
    broken.write_text(text.replace("upstream gateway {", "upstream gateway {\n    bogus on;", 1))
    for folder in ("logs", "tmp"):
        (tmp_path / folder).mkdir()
    checked = run("nginx", "-t", "-p", str(tmp_path), "-c", str(broken))
    assert checked.returncode != 0
    assert f"{broken}:" in checked.stderr and "bogus" in checked.stderr
