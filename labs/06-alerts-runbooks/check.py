"""Lab 6, alerts and runbooks: the learner writes an alert for a symptom the shop has no
alert for (the bank declining most cards), its runbook and its promtool unit tests,
loads it into the lab's Prometheus, trips it with a chaos fault, and sees it delivered.

``start`` scaffolds three files in the lab's folder: the rules file, its unit tests and
the runbook. The check reads them, runs the learner's tests, then tests of its own on a
copy of the rule without its annotations (its tests compare labels only): most orders
declined must fire, a few declines or no orders at all must not. Then it reads the live
stack: the rule loaded in Prometheus, the alert firing there since the lab started, and
the alert delivered to the lab's receiver (``obslab alerts``).

The fault is a 402 from payments' ``/charges``: orders are declined, not failed, so no
5xx is served and no breaker or SLO alert is tripped by this lab.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from obslab.chaos.faults import Admin, ChaosError
from obslab.labkit import rules
from obslab.labkit.base import Context, Exercise, Step

ALERT = "Lab6CardDeclinesSurge"
#: Where the learner's rule goes in the lab's Prometheus (its rule_files: rules/*.yml).
LOADED_AS = "lab6.yml"
UNWRITTEN = "(write this)"
SECTIONS = ("## What it means", "## Dashboard", "## Likely causes", "## Mitigation")

SCAFFOLD = f"""\
# Lab 6: an alert for a new symptom (labs/06-alerts-runbooks/README.md).
# `uv run obslab lab check 6` checks this file, its tests and its runbook.
groups:
  - name: lab6
    rules:
      # Fire when more than half of the orders of the last minute were declined
      # (obslab_orders_failed_total{{reason="card_declined"}} against every order, placed
      # or failed), for 15 seconds. The labels say how urgent it is and whose it is.
      - alert: {ALERT}
        expr: vector(0) > 1
        for: 15s
        labels:
          severity: ticket
          service: orders
        annotations:
          summary: ""
          # Quote the value: {{{{ $value | humanizePercentage }}}} prints 0.75 as 75%.
          description: ""
          runbook_url: .obslab/run/labs/06/runbook.md
"""
TESTS_SCAFFOLD = f"""\
# Unit tests of alert.yml: promtool test rules .obslab/run/labs/06/alert_test.yml
rule_files: [alert.yml]
evaluation_interval: 15s
tests:
  # Most orders declined: one placed, three declined every 15 seconds. What should fire,
  # with which labels and annotations?
  - interval: 15s
    input_series:
      - series: obslab_orders_placed_total
        values: 0+1x20
      - series: obslab_orders_failed_total{{reason="card_declined"}}
        values: 0+3x20
    alert_rule_test:
      - alertname: {ALERT}
        eval_time: 4m
        exp_alerts: []
  # Add a test where few orders are declined: nothing may fire.
"""
RUNBOOK_SCAFFOLD = f"""\
# {ALERT} (ticket)

{SECTIONS[0]}

{UNWRITTEN}

{SECTIONS[1]}

{UNWRITTEN}

{SECTIONS[2]}

{UNWRITTEN}

{SECTIONS[3]}

{UNWRITTEN}
"""

_PLACED = "obslab_orders_placed_total"
_DECLINED = 'obslab_orders_failed_total{reason="card_declined"}'
_OUT_OF_STOCK = 'obslab_orders_failed_total{reason="out_of_stock"}'


def _fires(at: str, fires: bool) -> dict[str, Any]:
    expected = [{"exp_labels": {"severity": "ticket", "service": "orders"}}] if fires else []
    return {"alertname": ALERT, "eval_time": at, "exp_alerts": expected}


#: The check's own tests: (step, hint, the promtool test groups).
TESTS: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        f"{ALERT} fires when 60% of orders are declined, as ticket for orders",
        "Two orders placed and three declined a minute: the declined share is 60%. Divide"
        " the declines' rate by the rate of every order, placed or failed, and keep the"
        " labels severity=ticket and service=orders.",
        [
            {
                "input_series": [
                    {"series": _PLACED, "values": "0+2x10"},
                    {"series": _DECLINED, "values": "0+3x10"},
                ],
                "alert_rule_test": [_fires("9m", fires=True)],
            }
        ],
    ),
    (
        f"{ALERT} waits: pending, not firing, at its first bad evaluation",
        "An alert without `for:` fires on one bad evaluation; this one must hold 15 s.",
        [
            {
                "input_series": [
                    {"series": _PLACED, "values": "0+2x10"},
                    {"series": _DECLINED, "values": "0x4 0+3x5"},
                ],
                # Declines from 5m on: true first at 6m (pending), firing from 7m.
                "alert_rule_test": [_fires("6m", fires=False), _fires("8m", fires=True)],
            }
        ],
    ),
    (
        f"{ALERT} stays silent when fewer than half are declined, or for other failures",
        "Three placed and two declined a minute is 40% of the orders: not a surge (is the"
        " share taken of every order, placed or failed?). And out-of-stock failures are"
        " not declines: only reason=card_declined counts.",
        [
            {
                "input_series": [
                    {"series": _PLACED, "values": "0+3x10"},
                    {"series": _DECLINED, "values": "0+2x10"},
                ],
                "alert_rule_test": [_fires("9m", fires=False)],
            },
            {
                "input_series": [
                    {"series": _PLACED, "values": "0+1x10"},
                    {"series": _OUT_OF_STOCK, "values": "0+5x10"},
                ],
                "alert_rule_test": [_fires("9m", fires=False)],
            },
        ],
    ),
]


def files(context: Context) -> tuple[Path, Path, Path]:
    """The rules file, its unit tests and the runbook, in the lab's folder."""
    folder = context.folder()
    return folder / "alert.yml", folder / "alert_test.yml", folder / "runbook.md"


def _prometheus_rules(context: Context) -> Path:
    return context.settings.path("prometheus", "rules", LOADED_AS)


def _reload(context: Context) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{context.stack.prometheus.url}/-/reload", timeout=10)


def _labels_only(context: Context, rule: dict[str, Any]) -> Path:
    """A rules file with the learner's rule without its annotations, for the check's tests."""
    path = context.folder() / "check-rule.yml"
    bare = {key: value for key, value in rule.items() if key != "annotations"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "lab6", "rules": [bare]}]}))
    return path


def _annotated(rule: dict[str, Any]) -> Step:
    annotations = rule.get("annotations") or {}
    missing = [
        name for name in ("summary", "description", "runbook_url") if not annotations.get(name)
    ]
    if missing:
        return Step(
            "the alert says what happened, how bad, and where the runbook is",
            False,
            f"Fill in its {missing[0]} annotation: the person it reaches reads nothing else.",
        )
    if "$value" not in str(annotations["description"]):
        return Step(
            "the alert says what happened, how bad, and where the runbook is",
            False,
            "Quote the current value in the description ({{ $value | humanizePercentage }}).",
        )
    return Step("the alert says what happened, how bad, and where the runbook is", True)


def _runbook(path: Path) -> Step:
    title = "its runbook is written"
    if not path.exists():
        return Step(title, False, f"{path} is gone: `obslab lab start 6` writes it again.")
    text = path.read_text()
    for number, section in enumerate(SECTIONS):
        if section not in text:
            return Step(title, False, f"The runbook lost its section {section!r}.")
        end = text.find(SECTIONS[number + 1]) if number + 1 < len(SECTIONS) else len(text)
        body = text[text.find(section) + len(section) : end].strip()
        if not body or UNWRITTEN in body:
            return Step(
                title,
                False,
                f"Write its section {section!r}: observability/runbooks/ has examples.",
            )
    return Step(title, True)


def _own_tests(tests: Path) -> Step:
    title = "your unit tests pass, one that fires and one that does not (promtool)"
    tool = rules.promtool()
    if tool is None:
        return Step(title, False, "promtool is needed (it comes with Prometheus): install it.")
    try:
        loaded = yaml.safe_load(tests.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        return Step(title, False, f"{tests} is not readable YAML: {exc}")
    cases = [
        case
        for group in loaded.get("tests") or []
        for case in group.get("alert_rule_test") or []
        if case.get("alertname") == ALERT
    ]
    if not any(case.get("exp_alerts") for case in cases) or all(
        case.get("exp_alerts") for case in cases
    ):
        return Step(
            title,
            False,
            f"Test {ALERT} both ways: a case where it fires (exp_alerts with its labels and"
            " annotations) and one where it must not (exp_alerts: []).",
        )
    ran = subprocess.run(
        [tool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    if ran.returncode != 0:
        said = " ".join((ran.stdout + ran.stderr).split())[-300:]
        return Step(title, False, f"promtool test rules fails: {said}")
    return Step(title, True)


def _delivered(context: Context) -> bool:
    since = context.record.started_at
    return any(
        alert["alertname"] == ALERT
        and alert["status"] == "firing"
        and _epoch(alert["starts_at"]) >= since - 60
        for alert in context.stack.telemetry.alerts()
    )


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class Alerting(Exercise):
    title = "Alerts and runbooks: a new symptom, tested and delivered"
    minutes = 40

    def start(self, context: Context) -> list[str]:
        rule_file, tests, runbook = files(context)
        rule_file.write_text(SCAFFOLD)
        tests.write_text(TESTS_SCAFFOLD)
        runbook.write_text(RUNBOOK_SCAFFOLD)
        return [
            f"Your alert: {rule_file}",
            f"Its unit tests: {tests}",
            f"Its runbook: {runbook}",
        ]

    def check(self, context: Context) -> list[Step]:
        rule_file, tests, runbook = files(context)
        steps = [rules.valid(rule_file, self.number)]
        if not steps[0].passed:
            return steps
        rule = rules.read(rule_file).get(ALERT)
        if rule is None:
            return [*steps, Step(f"alert {ALERT}", False, f"{rule_file} has no `{ALERT}`.")]
        steps += [_annotated(rule), _runbook(runbook), _own_tests(tests)]
        bare = _labels_only(context, rule)
        steps += [
            rules.unit_test(context, bare, name, hint, groups, f"check-{n}.yml")
            for n, (name, hint, groups) in enumerate(TESTS)
        ]
        prometheus = context.stack.prometheus
        steps.append(
            Step(
                f"{ALERT} is loaded in the lab's Prometheus",
                _is_loaded(context),
                "Copy your file into Prometheus' rules folder and reload it (step 4); a file"
                " Prometheus refuses is not loaded: see its log (obslab logs prometheus).",
            )
        )
        window = f"{int(time.time() - context.record.started_at) + 10}s"
        fired = prometheus.value(
            f'max(max_over_time(ALERTS{{alertname="{ALERT}", alertstate="firing"}}[{window}]))'
            " or vector(0)"
        )
        steps.append(
            Step(
                f"{ALERT} fired",
                fired >= 1,
                "Trip it (step 5): the bank must decline orders for longer than the alert's"
                " `for:`, and orders must keep coming while it does.",
            )
        )
        steps.append(
            Step(
                f"{ALERT} was delivered to the lab's receiver (obslab alerts)",
                _delivered(context),
                "Alertmanager sends what fires within seconds: is the fault still on, and"
                " do orders still come (step 5)?",
            )
        )
        return steps

    def reset(self, context: Context) -> None:
        for path in context.folder().glob("*"):
            path.unlink()
        loaded = _prometheus_rules(context)
        if loaded.exists():
            loaded.unlink()
            _reload(context)
        admin = Admin.of_lab(context.settings)
        with contextlib.suppress(ChaosError):
            for fault in admin.faults("payments"):
                if fault.get("route") == "/charges" and fault.get("status") == 402:
                    admin.remove("payments", fault["id"])
        admin.close()


def _is_loaded(context: Context) -> bool:
    try:
        groups = httpx.get(f"{context.stack.prometheus.url}/api/v1/rules", timeout=10).json()
    except httpx.HTTPError:
        return False
    return any(
        rule.get("name") == ALERT for group in groups["data"]["groups"] for rule in group["rules"]
    )


LAB = Alerting()
