"""``obslab load``: bad parameters refused before any load, the SLOs of slo.yaml as k6's
thresholds, and the smoke scenario run for real against the shared lab."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from obslab.cli import app
from obslab.load.k6 import K6, read_slo, scenarios
from obslab.repo import SCENARIOS, SLO_FILE
from tests.support.backends import free_port, wait_for
from tests.support.lab import OBSLAB, Lab

#: The products inventory stocks (catalog's demo products).


def obslab_load(*args: str) -> tuple[int, str]:
    """``obslab load ARGS`` in-process against a port nobody listens on: anything that
    got past validation would fail on the URL instead."""
    result = CliRunner().invoke(
        app, ["load", *args, "--url", f"http://127.0.0.1:{free_port()}"], catch_exceptions=False
    )
    return result.exit_code, result.output


# ------------------------------------------------------ refused before any load is sent


def test_an_unknown_scenario_is_refused_listing_the_known_ones() -> None:
    """A scenario that does not exist exits 2 and lists every scenario there is."""
    code, output = obslab_load("smok")
    assert code == 2
    assert "Unknown scenario 'smok'" in output
    for name in ("average", "breakpoint", "smoke", "soak", "spike", "stress"):
        assert name in output


@pytest.mark.parametrize("duration", ["30", "5x", "1m30", "0s"])
def test_a_duration_that_does_not_parse_is_refused(duration: str) -> None:
    """A duration k6 would not take (or shorter than a second) exits 2 naming it."""
    code, output = obslab_load("smoke", "--duration", duration)
    assert code == 2
    assert f"--duration {duration!r}" in output


def test_a_url_that_does_not_answer_is_refused() -> None:
    """A URL where nothing answers exits 2 before k6 starts."""
    code, output = obslab_load("smoke", "--duration", "5s")
    assert code == 2
    assert "does not answer" in output


def test_an_slo_file_without_a_journey_objective_is_refused(tmp_path: Path) -> None:
    """An SLO file missing a step's p99 exits 2 naming the missing key."""
    slo = yaml.safe_load(SLO_FILE.read_text())
    del slo["journeys"]["place_order"]["p99_ms"]
    broken = tmp_path / "slo.yaml"
    broken.write_text(yaml.safe_dump(slo))
    code, output = obslab_load("smoke", "--slo", str(broken))
    assert code == 2
    assert "journeys.place_order.p99_ms" in output


# ------------------------------------------------- the thresholds are the SLOs of slo.yaml


def test_print_slo_is_the_journeys_section_of_slo_yaml() -> None:
    """What k6 gets as SLO is the journeys: section of observability/slo.yaml, as it is,
    and the error budget of its availability objective as the failure rate allowed."""
    result = CliRunner().invoke(app, ["load", "--print-slo"])
    assert result.exit_code == 0
    slo = yaml.safe_load(SLO_FILE.read_text())
    printed = json.loads(result.output)
    assert printed.pop("max_error_rate") == pytest.approx(1 - slo["availability"]["objective"])
    assert printed == slo["journeys"]


def test_a_journey_p99_above_the_latency_slo_is_refused(tmp_path: Path) -> None:
    """A p99 the latency SLO would count as slow exits 2: the test would pass while the
    SLO burns."""
    slo = yaml.safe_load(SLO_FILE.read_text())
    slo["journeys"]["browse"]["p99_ms"] = slo["latency"]["threshold_s"] * 1000 + 1
    broken = tmp_path / "slo.yaml"
    broken.write_text(yaml.safe_dump(slo))
    code, output = obslab_load("smoke", "--slo", str(broken))
    assert code == 2
    assert "the p99 of browse exceeds latency.threshold_s" in output


@pytest.mark.parametrize("scenario", scenarios())
def test_every_scenario_takes_its_thresholds_from_the_slo(scenario: str) -> None:
    """Each scenario's k6 options (read by `k6 inspect`, nothing sent) hold a p95 and a
    p99 threshold per step it runs, and the error rate, with slo.yaml's numbers."""
    slo = read_slo()
    script = SCENARIOS / f"{scenario}.js"
    inspected = subprocess.run(
        [str(K6), "inspect", "--execution-requirements", f"--env=SLO={json.dumps(slo)}", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert inspected.returncode == 0, inspected.stderr
    thresholds = {
        name: [rule if isinstance(rule, str) else rule["threshold"] for rule in rules]
        for name, rules in json.loads(inspected.stdout)["thresholds"].items()
    }
    assert thresholds["http_req_failed"] == [f"rate<{slo['max_error_rate']}"]
    steps = ["place_order"] if scenario == "breakpoint" else list(slo)[:4]
    for step in steps:
        assert thresholds[f"http_req_duration{{step:{step}}}"] == [
            f"p(95)<{slo[step]['p95_ms']}",
            f"p(99)<{slo[step]['p99_ms']}",
        ]


# -------------------------------------------------------------- for real, against the lab


def impatient_load(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """``obslab load ARGS`` against the lab with shoppers who do not think: a journey in
    about a second where a thinking shopper's takes ten, so a short run still has
    enough samples that one slow request on a busy machine is not the whole p95."""
    return subprocess.run(
        [OBSLAB, "load", *args],
        env={**lab.env, "THINK_SCALE": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.e2e
@pytest.mark.usefixtures("stock_restored")
def test_smoke_passes_its_thresholds_and_writes_its_summary(lab: Lab) -> None:
    """A short smoke run against the lab passes every threshold, exercises every step,
    and leaves its summary as JSON and as a table in the runtime folder."""
    run = impatient_load(lab, "smoke", "--duration", "15s", "--vus", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "All thresholds passed." in run.stdout

    summary = lab.settings.path("load", "smoke.summary.json")
    metrics = json.loads(summary.read_text())["metrics"]
    for step in ("browse", "view_product", "place_order", "poll_order"):
        assert metrics[f"http_req_duration{{step:{step}}}"]["values"]["count"] > 0, step
    table = summary.with_suffix(".txt").read_text()
    assert "place_order" in table
    assert table in run.stdout


@pytest.mark.e2e
@pytest.mark.usefixtures("stock_restored")
def test_an_impossible_threshold_fails_the_run_naming_it(lab: Lab, tmp_path: Path) -> None:
    """With checkout's p99 objective at 1 ms the run exits 1 and names that threshold."""
    slo = yaml.safe_load(SLO_FILE.read_text())
    slo["journeys"]["place_order"]["p99_ms"] = 1
    impossible = tmp_path / "slo.yaml"
    impossible.write_text(yaml.safe_dump(slo))

    run = impatient_load(lab, "smoke", "--duration", "2s", "--vus", "1", "--slo", str(impossible))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Threshold failed: http_req_duration{step:place_order}: p(99)<1" in run.stderr


@pytest.mark.e2e
@pytest.mark.usefixtures("stock_restored")
def test_prometheus_receives_the_runs_metrics_by_remote_write(lab: Lab) -> None:
    """With --prometheus, k6's request durations land in the lab's Prometheus, per step."""
    run = impatient_load(lab, "smoke", "--duration", "2s", "--vus", "1", "--prometheus")
    assert run.returncode == 0, run.stdout + run.stderr

    def steps() -> set[str]:
        found = httpx.get(
            f"{lab.prometheus}/api/v1/series",
            params={"match[]": 'k6_http_req_duration_p99{testid=~"smoke-.*"}'},
        ).json()["data"]
        return {series.get("step", "") for series in found}

    wait_for(lambda: {"browse", "place_order"} <= steps(), 60, "k6 series in Prometheus")
