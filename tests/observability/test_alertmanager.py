"""Alertmanager's routes, checked by amtool, and its inhibition and delivery, checked
with a real Alertmanager posting to the shop's own webhook receiver."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.observability.checks import OBSERVABILITY
from tests.support.alerting import Alerting, running_alerting
from tests.support.backends import wait_for

CONFIG = OBSERVABILITY / "alertmanager" / "alertmanager.yml"
RULES = OBSERVABILITY / "prometheus" / "rules"
#: From a post to Alertmanager to a stored delivery: group_wait is 1 s, but the machine
#: is busy with other tests.
DEADLINE_S = 60


def route(*labels: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={CONFIG}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
    )


def alert_rules() -> list[dict[str, object]]:
    """Every alerting rule of both generated profiles."""
    return [
        rule
        for path in sorted(RULES.glob("*/*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=page", "service=gateway", "alertname=SLOAvailabilityFastBurn"], "page"),
        (["severity=ticket", "service=orders", "alertname=HighErrorRatio"], "ticket"),
        (["severity=info", "service=payments", "alertname=ChaosFaultActive"], "info"),
        # A rule that forgot its severity still reaches a person.
        (["service=orders", "alertname=Unlabelled"], "ticket"),
        (["severity=critical", "service=orders", "alertname=Mislabelled"], "ticket"),
    ],
)
def test_each_severity_routes_to_its_receiver(labels: list[str], receiver: str) -> None:
    """amtool resolves each severity to the receiver of that name, and anything else to
    ticket."""
    routed = route(f"--verify.receivers={receiver}", *labels)
    assert routed.returncode == 0, routed.stdout + routed.stderr


def test_a_wrong_expectation_fails_the_route_test() -> None:
    """The routing test is real: expecting a page for a ticket fails."""
    routed = route("--verify.receivers=page", "severity=ticket", "service=orders")
    assert routed.returncode != 0


def test_every_alert_of_every_profile_routes_by_its_own_severity() -> None:
    """Each generated alert's severity is one Alertmanager has a route for, and its labels
    route it to the receiver named after that severity."""
    rules = alert_rules()
    assert len(rules) >= 2 * 17
    for rule in rules:
        labels = dict(rule["labels"])  # type: ignore[call-overload]
        assert labels["severity"] in ("page", "ticket", "info"), rule["alert"]
        routed = route(
            f"--verify.receivers={labels['severity']}",
            f"alertname={rule['alert']}",
            *(f"{name}={value}" for name, value in labels.items()),
        )
        assert routed.returncode == 0, f"{rule['alert']}: {routed.stdout}{routed.stderr}"


def test_the_inhibited_alerts_exist_and_are_errors_and_latency() -> None:
    """The inhibition names real alerts: ServiceDown silences that service's error-ratio
    and p99-latency alerts, and only those."""
    config = yaml.safe_load(CONFIG.read_text())
    names = {str(rule["alert"]) for rule in alert_rules()}
    (rule,) = config["inhibit_rules"]
    assert rule["source_matchers"] == ['alertname="ServiceDown"']
    assert rule["equal"] == ["service"]
    targets = rule["target_matchers"][0].removeprefix('alertname=~"').removesuffix('"')
    assert set(targets.split("|")) == {"HighErrorRatio", "HighLatencyP99"} <= names
    assert "ServiceDown" in names


@pytest.fixture(scope="module")
def alerting() -> Iterator[Alerting]:
    with running_alerting() as started:
        yield started


@pytest.mark.e2e
def test_a_service_down_inhibits_its_error_and_latency_alerts(alerting: Alerting) -> None:
    """With orders down, Alertmanager suppresses orders' error and latency alerts and
    delivers only the page, while payments' error alert (another service) is delivered."""
    down = {"alertname": "ServiceDown", "severity": "page", "service": "orders"}
    errors = {"alertname": "HighErrorRatio", "severity": "ticket", "service": "orders"}
    slow = {"alertname": "HighLatencyP99", "severity": "ticket", "service": "orders"}
    elsewhere = {"alertname": "HighErrorRatio", "severity": "ticket", "service": "payments"}
    alerting.fire(down, errors, slow, elsewhere)

    def states() -> dict[tuple[str, str], str]:
        return {
            (a["labels"]["alertname"], a["labels"]["service"]): a["status"]["state"]
            for a in alerting.held()
        }

    wait_for(lambda: len(states()) == 4, DEADLINE_S, "Alertmanager holding the four alerts")
    assert states() == {
        ("ServiceDown", "orders"): "active",
        ("HighErrorRatio", "orders"): "suppressed",
        ("HighLatencyP99", "orders"): "suppressed",
        ("HighErrorRatio", "payments"): "active",
    }

    def delivered() -> set[tuple[str, str, str]]:
        return {(a["alertname"], a["service"], a["receiver"]) for a in alerting.delivered()}

    wait_for(lambda: len(delivered()) >= 2, DEADLINE_S, "the two active alerts delivered")
    assert delivered() == {
        ("ServiceDown", "orders", "page"),
        ("HighErrorRatio", "payments", "ticket"),
    }


@pytest.mark.e2e
def test_alerts_are_grouped_by_service_and_alertname(alerting: Alerting) -> None:
    """One notification per service and alert name: two RetryStorm alerts of orders
    (towards two downstreams) make one group, gateway's its own; the groups' labels are
    exactly the route's group_by."""
    storm = {"alertname": "RetryStorm", "severity": "ticket"}
    alerting.fire(
        {**storm, "service": "orders", "downstream": "payments"},
        {**storm, "service": "orders", "downstream": "inventory"},
        {**storm, "service": "gateway", "downstream": "orders"},
    )

    def groups() -> dict[tuple[str, ...], int]:
        answer = httpx.get(f"{alerting.alertmanager}/api/v2/alerts/groups", timeout=10)
        assert answer.status_code == 200, answer.text
        return {
            tuple(sorted(group["labels"].items())): len(group["alerts"])
            for group in answer.json()
            if group["labels"].get("alertname") == "RetryStorm"
        }

    wait_for(lambda: sum(groups().values()) == 3, DEADLINE_S, "the three alerts held")
    assert groups() == {
        (("alertname", "RetryStorm"), ("service", "gateway")): 1,
        (("alertname", "RetryStorm"), ("service", "orders")): 2,
    }
