"""``obslab chaos``: its arguments checked before anything is sent, the experiment
files valid, and the lab's admin token made private and given to every service."""

from __future__ import annotations

import io
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from obskit._chaos.model import KINDS
from obslab.chaos import faults
from obslab.chaos.experiment import (
    Experiment,
    ExperimentError,
    load_experiment,
    run_experiment,
)
from obslab.cli import app
from obslab.native.lab import LabSettings, admin_token, plan
from obslab.prometheus import Prometheus

EXPERIMENTS_DIR = Path(__file__).parents[2] / "chaos" / "experiments"
EXPERIMENTS = sorted(EXPERIMENTS_DIR.glob("*.yaml"))
runner = CliRunner()


def test_the_cli_knows_the_kinds_the_services_apply() -> None:
    """The CLI's list of fault kinds is the kit's (the CLI does not import the kit)."""
    assert faults.KINDS == KINDS


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inject", "paymnts", "latency", "--ms", "800"], "Unknown service 'paymnts'"),
        (["inject", "payments", "lag", "--ms", "800"], "Unknown fault 'lag'"),
        (["inject", "payments", "latency", "--ms", "800", "--for", "2d"], "Bad duration"),
        (["inject", "payments", "latency", "--ms", "800", "--for", "2h"], "from 1s to 1h"),
        (["clear", "nobody"], "Unknown service 'nobody'"),
        (["list", "nobody"], "Unknown service 'nobody'"),
    ],
)
def test_a_bad_argument_exits_2_before_anything_is_sent(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown service or kind or a bad duration is refused with exit 2 and a clear
    message, before any service is called (there is none here to call)."""
    monkeypatch.setenv("OBSLAB_LAB_RUNTIME_DIR", str(tmp_path))
    result = runner.invoke(app, ["chaos", *argv])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_without_a_lab_or_a_token_the_cli_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no lab up and no OBSLAB_ADMIN_TOKEN, the CLI explains where the token comes from."""
    monkeypatch.setenv("OBSLAB_LAB_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("OBSLAB_ADMIN_TOKEN", raising=False)
    result = runner.invoke(app, ["chaos", "list"])
    assert result.exit_code == 1
    assert "No admin token" in result.output


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_file_is_valid(path: Path) -> None:
    """Each experiment in chaos/experiments loads against the schema and names the alerts
    it must make arrive at the webhook."""
    experiment = load_experiment(path)
    assert experiment.steady_state and experiment.method and experiment.expect.alerts


def test_the_issue_s_experiments_are_all_there() -> None:
    """The seven experiments the lab promises exist."""
    assert {p.stem for p in EXPERIMENTS} >= {
        "slow-payments",
        "failing-payments",
        "payments-unreachable",
        "cache-outage",
        "broker-outage",
        "worker-backlog",
        "gateway-replica-killed",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("title: x\n", "description: Field required"),
        ("- just a list\n", "Input should be a valid dictionary"),
        ("title: [unclosed\n", "expected"),
        ("expect: {alerts: [{alert: High Error}]}\n", "expect.alerts.0.alert: String should"),
        ("expect: {deadline: 1m}\n", "expect: Value error, expect needs probes, alerts"),
    ],
)
def test_a_bad_experiment_is_refused_saying_where(text: str, problem: str, tmp_path: Path) -> None:
    """A file that is not an experiment is refused naming the field (or the YAML error)."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ExperimentError, match=problem):
        load_experiment(path)


def test_an_unknown_fault_kind_in_an_experiment_is_refused(tmp_path: Path) -> None:
    """A method step with a kind no service applies is refused, and `run` exits 2."""
    path = tmp_path / "lag.yaml"
    path.write_text(
        (EXPERIMENTS_DIR / "slow-payments.yaml").read_text().replace("kind: latency", "kind: lag")
    )
    with pytest.raises(ExperimentError, match="unknown fault kind 'lag'"):
        load_experiment(path)
    result = runner.invoke(app, ["chaos", "run", str(path)])
    assert result.exit_code == 2
    assert "unknown fault kind" in " ".join(result.output.split())


def test_the_lab_s_admin_token_is_private_and_given_to_every_service(tmp_path: Path) -> None:
    """`obslab up`'s plan makes one random admin token, readable by its owner only, and
    gives it to every service (both gateway replicas too), to nothing else."""
    settings = LabSettings(_env_file=None, runtime_dir=tmp_path)  # type: ignore[call-arg]
    processes = [process for stage in plan(settings) for process in stage]
    token = admin_token(settings)
    assert len(token) >= 32
    assert stat.S_IMODE((tmp_path / "admin-token").stat().st_mode) == 0o600
    services = {p.name: p.env for p in processes if "OBSLAB_PORT" in p.env}
    assert set(services) >= {"gateway-1", "gateway-2", "payments", "notifications"}
    assert all(env["OBSLAB_ADMIN_TOKEN"] == token for env in services.values())
    others = [p for p in processes if "OBSLAB_PORT" not in p.env]
    assert all("OBSLAB_ADMIN_TOKEN" not in p.env for p in others)


# ----------------------------------------------------------------- the runner's own logic


class FakeAdmin:
    """Records what the runner asks of the services' admin APIs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def inject(self, service: str, fault: dict[str, object]) -> dict[str, object]:
        self.calls.append(("inject", service))
        return {"id": "f1", "service": service, **fault}

    def clear(self, service: str) -> int:
        self.calls.append(("clear", service))
        return 1


def prometheus(breaker_opens: bool | None, steady: bool = True) -> Prometheus:
    """A Prometheus that answers the slow-payments probes: steady (or not), and the breaker
    open (True), never open (False), or Ctrl-C while it is watched (None)."""

    def answer(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        if 'state="open"' in query or "not_permitted" in query:
            if breaker_opens is None:
                raise KeyboardInterrupt
            assert "$window" not in query  # replaced by the time since the injection
            value = 1 if breaker_opens else 0
        elif "chaos_active" in query:
            value = 0 if steady else 1
        else:
            value = 1
        result = [{"metric": {}, "value": [0, str(value)]}]
        return httpx.Response(200, json={"status": "success", "data": {"result": result}})

    return Prometheus("http://prometheus", transport=httpx.MockTransport(answer))


def quick(name: str) -> Experiment:
    """An experiment of the repository without its load and with short deadlines."""
    experiment = load_experiment(EXPERIMENTS_DIR / f"{name}.yaml")
    expect = experiment.expect.model_copy(update={"deadline": 2, "resolve_deadline": 2})
    return experiment.model_copy(update={"load": None, "expect": expect, "recovery_deadline": 2})


class FakeWebhook:
    """Alertmanager's deliveries to the lab's receiver as the runner reads them: each
    alert of ``fires`` (name, service) is delivered firing once a fault is injected, and
    resolved once it is cleared (unless ``resolves`` is false); ``earlier`` rows were
    delivered before the experiment."""

    def __init__(
        self,
        admin: FakeAdmin,
        fires: list[tuple[str, str]],
        resolves: bool = True,
        earlier: list[dict[str, object]] | None = None,
    ) -> None:
        self.admin, self.fires, self.resolves = admin, fires, resolves
        self.earlier = earlier or []
        self.started = ""

    def delivered(self) -> list[dict[str, object]]:
        if not any(call == "inject" for call, _ in self.admin.calls):
            return list(self.earlier)
        # As Alertmanager sends it: UTC, "Z", nanoseconds.
        self.started = self.started or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f001Z")
        cleared = any(call == "clear" for call, _ in self.admin.calls)
        status = "resolved" if cleared and self.resolves else "firing"
        return [
            *self.earlier,
            *(
                {
                    "alertname": name,
                    "service": service,
                    "status": status,
                    "starts_at": self.started,
                    "labels": {"alertname": name, "service": service},
                }
                for name, service in self.fires
            ),
        ]


def expected(name: str) -> list[tuple[str, str]]:
    """The alerts (name, service) an experiment of the repository expects."""
    alerts = load_experiment(EXPERIMENTS_DIR / f"{name}.yaml").expect.alerts
    return [(a.alert, a.service or "gateway") for a in alerts]


def run(
    breaker_opens: bool | None,
    tmp_path: Path,
    steady: bool = True,
    fires: list[tuple[str, str]] | None = None,
    resolves: bool = True,
    earlier: list[dict[str, object]] | None = None,
) -> tuple[dict, FakeAdmin]:
    admin = FakeAdmin()
    settings = LabSettings(_env_file=None, runtime_dir=tmp_path)  # type: ignore[call-arg]
    fires = expected("slow-payments") if fires is None else fires
    journal, path = run_experiment(
        quick("slow-payments"),
        admin,  # type: ignore[arg-type]
        prometheus(breaker_opens, steady),
        settings,
        Console(file=io.StringIO()),
        FakeWebhook(admin, fires, resolves, earlier),  # type: ignore[arg-type]
    )
    assert json.loads(path.read_text()) == journal
    assert path.parent == tmp_path / "chaos"
    return journal, admin


def test_an_experiment_whose_signals_appear_completes_and_rolls_back(tmp_path: Path) -> None:
    """Steady state, fault injected, breaker seen open and alerts delivered, fault
    cleared, recovered, alerts delivered resolved."""
    journal, admin = run(True, tmp_path)
    assert journal["status"] == "completed", journal
    assert admin.calls == [("inject", "payments"), ("clear", "payments")]
    steps = journal["steps"]
    assert [r["alert"] for r in steps["alerts"]] == [
        str(a) for a in load_experiment(EXPERIMENTS_DIR / "slow-payments.yaml").expect.alerts
    ]
    assert all(r["ok"] and r["arrived"] for r in steps["alerts"])
    assert all(r["ok"] and r["resolved"] == 1 for r in steps["alerts_resolved"])


def test_an_alert_that_never_arrives_fails_the_experiment(tmp_path: Path) -> None:
    """An expected alert Alertmanager never delivers fails the run, naming the alert,
    after the rollback."""
    missing, *delivered = expected("slow-payments")
    journal, admin = run(True, tmp_path, fires=delivered)
    assert journal["status"] == "failed"
    assert journal["verdict"] == f"signals not seen: {missing[0]}{{service={missing[1]}}}"
    assert admin.calls[-1] == ("clear", "payments")


def test_an_alert_that_does_not_resolve_after_rollback_fails_the_experiment(
    tmp_path: Path,
) -> None:
    """Alerts that arrive but are still firing at the webhook when the resolve deadline
    passes fail the run, though everything else recovered."""
    journal, _ = run(True, tmp_path, resolves=False)
    assert journal["status"] == "failed"
    assert journal["verdict"].startswith("alerts not resolved: ")
    assert all(r["firing"] == 1 for r in journal["steps"]["alerts_resolved"])


def earlier(status: str) -> list[dict[str, object]]:
    """The slow-payments alerts as delivered by an earlier experiment, now ``status``."""
    return [
        {
            "alertname": name,
            "service": service,
            "status": status,
            "starts_at": "2026-01-01T00:00:00.000000001Z",
            "labels": {"alertname": name, "service": service},
        }
        for name, service in expected("slow-payments")
    ]


def test_an_alert_delivered_before_the_fault_does_not_count(tmp_path: Path) -> None:
    """An expected alert delivered (and resolved) before the injection is not this
    experiment's: only a delivery that started after the fault went in proves it."""
    journal, _ = run(True, tmp_path, fires=[], earlier=earlier("resolved"))
    assert journal["status"] == "failed"
    assert journal["verdict"].startswith("signals not seen: ")
    assert not any(r["ok"] for r in journal["steps"]["alerts"])


def test_an_expected_alert_still_firing_before_stops_the_experiment(tmp_path: Path) -> None:
    """An expected alert still firing when the experiment starts (and past the resolve
    deadline) could not be told from the fault's own: nothing is injected."""
    journal, admin = run(True, tmp_path, earlier=earlier("firing"))
    assert journal["status"] == "failed"
    assert journal["verdict"] == "an expected alert was still firing before: nothing was injected"
    assert not any(r["ok"] for r in journal["steps"]["alerts_before"])
    assert ("inject", "payments") not in admin.calls


def test_a_signal_that_never_appears_fails_the_experiment_after_the_rollback(
    tmp_path: Path,
) -> None:
    """A breaker that never opens within the deadline fails the run, naming the signal."""
    journal, admin = run(False, tmp_path)
    assert journal["status"] == "failed"
    assert "the breaker opened" in journal["verdict"]
    assert admin.calls[-1] == ("clear", "payments")


def test_ctrl_c_aborts_the_experiment_and_still_rolls_back(tmp_path: Path) -> None:
    """Ctrl-C while the signals are watched: the faults are cleared, the run is aborted."""
    journal, admin = run(None, tmp_path)
    assert journal["status"] == "aborted"
    assert admin.calls == [("inject", "payments"), ("clear", "payments")]


def test_ctrl_c_before_the_load_started_aborts_cleanly(tmp_path: Path) -> None:
    """Ctrl-C while the steady state is checked, before the load's shoppers started:
    the run is aborted, nothing was injected, and stopping the load does not crash."""

    def interrupt(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    admin = FakeAdmin()
    settings = LabSettings(_env_file=None, runtime_dir=tmp_path)  # type: ignore[call-arg]
    experiment = load_experiment(EXPERIMENTS_DIR / "slow-payments.yaml")
    assert experiment.load is not None
    journal, _ = run_experiment(
        experiment,
        admin,  # type: ignore[arg-type]
        Prometheus("http://prometheus", transport=httpx.MockTransport(interrupt)),
        settings,
        Console(file=io.StringIO()),
        FakeWebhook(admin, []),  # type: ignore[arg-type]
    )
    assert journal["status"] == "aborted"
    assert admin.calls == []


def test_no_fault_is_injected_when_the_steady_state_does_not_hold(tmp_path: Path) -> None:
    """With a fault already active, the hypothesis fails first and nothing is injected."""
    journal, admin = run(True, tmp_path, steady=False)
    assert journal["status"] == "failed"
    assert "steady state" in journal["verdict"]
    assert ("inject", "payments") not in admin.calls
