"""The shop's alert receiver (Alertmanager's webhook into the lab's store) and
``obslab alerts``, which lists what was delivered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from obslab import cli
from obslab.cli import app
from obslab.native.lab import COMPOSE_WEBHOOK, LabSettings, plan
from obslab.telemetry.receiver import ReceiverSettings, create_app
from tests.support.alerting import Alerting, running_alerting
from tests.support.backends import wait_for

#: From a post to Alertmanager to a stored delivery (group_wait 1 s; resolved after
#: group_interval, 10 s), on a machine busy with other tests.
DEADLINE_S = 60


def notification(status: str = "firing", **changes: Any) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4) with one alert."""
    alert = {
        "status": status,
        "labels": {"alertname": "HighErrorRatio", "severity": "ticket", "service": "orders"},
        "annotations": {
            "summary": "orders answers 5xx to 20% of requests",
            "runbook_url": "observability/runbooks/HighErrorRatio.md",
        },
        "startsAt": "2026-11-28T01:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-28T01:05:00Z",
        "generatorURL": "http://127.0.0.1:18090/graph",
        "fingerprint": "c6b9a3e2d7f01a45",
    } | changes
    return {
        "version": "4",
        "groupKey": '{}/{severity="ticket"}:{alertname="HighErrorRatio", service="orders"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "ticket",
        "groupLabels": {"alertname": "HighErrorRatio", "service": "orders"},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://127.0.0.1:18093",
        "alerts": [alert],
    }


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[TestClient]:
    settings = ReceiverSettings(database=tmp_path / "data" / "telemetry.sqlite3")
    with TestClient(create_app(settings)) as client:
        yield client


def listed(runtime: Path, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["alerts", "--json", *args], env={"OBSLAB_LAB_RUNTIME_DIR": str(runtime)}
    )
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_an_alert_is_one_row_from_firing_to_resolved(receiver: TestClient, tmp_path: Path) -> None:
    """Repeats and the resolution of a firing update its row; the same alert firing again
    later (a new startsAt) is a row of its own, listed first."""
    for body in (notification(), notification(), notification("resolved")):
        assert receiver.post("/alerts", json=body).json() == {"stored": 1}
    again = notification(startsAt="2026-11-28T02:00:00Z")
    assert receiver.post("/alerts", json=again).status_code == 200
    alerts = listed(tmp_path)
    assert [(a["status"], a["starts_at"]) for a in alerts] == [
        ("firing", "2026-11-28T02:00:00.000000+00:00"),
        ("resolved", "2026-11-28T01:00:00.123456+00:00"),
    ]
    assert alerts[1] | {"labels": {}, "annotations": {}} == {
        "alertname": "HighErrorRatio",
        "status": "resolved",
        "severity": "ticket",
        "service": "orders",
        "summary": "orders answers 5xx to 20% of requests",
        "runbook_url": "observability/runbooks/HighErrorRatio.md",
        "receiver": "ticket",
        "starts_at": "2026-11-28T01:00:00.123456+00:00",
        "ends_at": "2026-11-28T01:05:00.000000+00:00",
        "labels": {},
        "annotations": {},
    }
    assert [a["status"] for a in listed(tmp_path, "--firing")] == ["firing"]


def test_a_later_start_of_an_alert_ends_its_earlier_row(
    receiver: TestClient, tmp_path: Path
) -> None:
    """Alertmanager holds one alert per fingerprint: a delivery of the same alert with
    a later start (firing, or resolved) means the earlier firing is over, resolved when
    the new one started, instead of firing for ever."""
    receiver.post("/alerts", json=notification())
    later = notification("resolved", startsAt="2026-11-28T02:00:00Z")
    receiver.post("/alerts", json=later)
    assert [(a["status"], a["starts_at"], a["ends_at"]) for a in listed(tmp_path)] == [
        ("resolved", "2026-11-28T02:00:00.000000+00:00", "2026-11-28T01:05:00.000000+00:00"),
        ("resolved", "2026-11-28T01:00:00.123456+00:00", "2026-11-28T02:00:00.000000+00:00"),
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not json", "application/json", 400),
        (json.dumps({"version": "3", "alerts": []}).encode(), "application/json", 400),
        (json.dumps(notification(status="burning")).encode(), "application/json", 400),
        (json.dumps(notification(startsAt="yesterday")).encode(), "application/json", 400),
        (json.dumps(notification()).encode(), "text/plain", 415),
        (b"[" * (2 * 1024 * 1024), "application/json", 413),
    ],
)
def test_a_body_that_is_not_a_notification_is_refused_with_the_error_body(
    receiver: TestClient, tmp_path: Path, body: bytes, content_type: str, status: int
) -> None:
    """Bad JSON, another payload version, an unknown status, a bad time, another media
    type or an oversized body get a 4xx with the JSON error body, and nothing is stored."""
    answer = receiver.post("/alerts", content=body, headers={"content-type": content_type})
    assert answer.status_code == status
    assert set(answer.json()["error"]) == {"code", "message", "details"}
    assert listed(tmp_path) == []


def test_alerts_says_when_there_is_no_store(tmp_path: Path) -> None:
    """Without a lab (no store), `obslab alerts` says how to start one and exits 2."""
    result = CliRunner().invoke(app, ["alerts"], env={"OBSLAB_LAB_RUNTIME_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "make up" in result.output


def test_the_lab_sends_alerts_to_its_own_receiver(tmp_path: Path) -> None:
    """`obslab up` starts the receiver even when traces go elsewhere (--otlp), and its
    Alertmanager's webhooks name that receiver, not compose's."""
    settings = LabSettings(
        _env_file=None, runtime_dir=tmp_path, otlp_port=24318, otlp_endpoint="http://x:4318"
    )
    names = [process.name for stage in plan(settings) for process in stage]
    assert "telemetry" in names
    config = (tmp_path / "alertmanager" / "alertmanager.yml").read_text()
    assert COMPOSE_WEBHOOK.rsplit(":", 1)[0] not in config
    assert config.count("url: http://127.0.0.1:24318/alerts") == 3


@pytest.fixture(scope="module")
def alerting() -> Iterator[Alerting]:
    with running_alerting() as started:
        yield started


@pytest.mark.e2e
def test_alertmanager_delivers_firing_and_resolved_to_obslab_alerts(
    alerting: Alerting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real Alertmanager delivers an alert to the receiver by its severity's route;
    `obslab alerts` lists it firing with its summary and runbook, then resolved."""
    labels = {"alertname": "CircuitBreakerOpen", "severity": "ticket", "service": "orders"}
    alerting.fire(labels)

    def states() -> list[str]:
        return [a["status"] for a in listed(alerting.runtime)]

    wait_for(lambda: states() == ["firing"], DEADLINE_S, "the alert delivered")
    (alert,) = listed(alerting.runtime)
    assert alert["receiver"] == "ticket"
    assert alert["summary"] == "CircuitBreakerOpen of orders"
    assert alert["runbook_url"] == "observability/runbooks/CircuitBreakerOpen.md"
    monkeypatch.setattr(cli.console, "width", 200)  # a wide terminal: no folded cells
    table = CliRunner().invoke(app, ["alerts"], env=alerting.env)
    assert "CircuitBreakerOpen" in table.output
    assert "observability/runbooks/CircuitBreakerOpen.md" in table.output

    alerting.fire(labels, minutes=0)  # as Prometheus does once the condition is gone
    wait_for(lambda: states() == ["resolved"], DEADLINE_S, "the alert resolved")


@pytest.mark.e2e
def test_an_alert_refired_within_group_interval_is_one_firing_then_resolved(
    alerting: Alerting,
) -> None:
    """An alert resolved and fired again before Alertmanager's next flush
    (group_interval 10 s) is not sent again (the group's firing set did not change);
    its final resolution comes with the second start. Nothing is left firing."""
    labels = {"alertname": "ChaosFaultActive", "severity": "info", "service": "catalog"}

    def rows() -> list[dict[str, Any]]:
        return [r for r in listed(alerting.runtime) if r["labels"] == labels]

    alerting.fire(labels)
    wait_for(lambda: len(rows()) == 1, DEADLINE_S, "the alert delivered")
    alerting.fire(labels, minutes=0)
    alerting.fire(labels)
    alerting.fire(labels, minutes=0)
    wait_for(lambda: len(rows()) == 2, DEADLINE_S, "the second start, resolved")
    assert [r["status"] for r in rows()] == ["resolved", "resolved"]
