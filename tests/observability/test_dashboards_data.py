"""Every PromQL query of every dashboard returns data from a real Prometheus scraping the
native lab under traffic: a panel that parses but stays empty is a broken panel too."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.observability import checks
from tests.observability.checks import OBSERVABILITY
from tests.support.auth import auth_headers
from tests.support.lab import CARD, OBSLAB, Lab, place_order

pytestmark = pytest.mark.e2e

DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
#: payments' bank declines this card: one failed order gives orders_failed_total a series.
DECLINED = CARD | {"number": "4000000000000002"}
#: From the first order to every panel's data: a few scrapes (every 5 s) and rule runs.
DEADLINE_S = 180
_LABEL_VALUES = re.compile(r"label_values\((?:(.+),\s*)?(\w+)\)")


def query(lab: Lab, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{lab.prometheus}/api/v1/query", params={"query": expr}, timeout=30)
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def traffic(lab: Lab) -> None:
    """Orders (one declined) and catalog reads, so every service has requests to count."""
    for product_id in (1, 2):
        assert place_order(lab.edge, product_id).status_code == 201
    declined = httpx.post(
        f"{lab.edge}/api/orders",
        json={"items": [{"product_id": 1, "quantity": 1}], "card": DECLINED},
        headers=auth_headers(lab.edge),
        timeout=30,
    )
    assert declined.status_code == 402, declined.text
    for path in ("/api/products", "/api/products/1", "/api/products/1"):
        assert httpx.get(f"{lab.edge}{path}", timeout=30).status_code == 200


def variable_values(lab: Lab, dashboard: checks.Model) -> dict[str, list[str]]:
    """Each variable's values; a query variable's come from Prometheus as Grafana's do."""
    values: dict[str, list[str]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "custom":
            options = [option.strip() for option in variable["query"].split(",")]
        elif variable["type"] == "query":
            definition = variable.get("definition") or variable["query"]["query"]
            found = _LABEL_VALUES.fullmatch(definition.strip())
            assert found, f"{definition}: only label_values(metric, label) is understood here"
            metric, label = found.groups()
            answer = httpx.get(
                f"{lab.prometheus}/api/v1/label/{label}/values",
                params={"match[]": metric} if metric else {},
                timeout=30,
            ).json()
            options = answer["data"]
        else:
            continue
        values[variable["name"]] = options
    return values


def as_sent(dashboard: checks.Model, values: dict[str, list[str]]) -> dict[str, str]:
    """Each variable as Grafana sends it: its allValue when it has "All", else all its
    values joined for a regex matcher (or the first, for a single-value variable)."""
    sent: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        options = values.get(variable["name"], [])
        if variable.get("includeAll") and variable.get("allValue"):
            sent[variable["name"]] = variable["allValue"]
        elif options:
            sent[variable["name"]] = "|".join(options) if variable.get("multi") else options[0]
    return sent


def assignments(dashboard: checks.Model, values: dict[str, list[str]]) -> list[dict[str, str]]:
    """The variable values to check the dashboard with: as Grafana sends them, and then
    each value in turn of a single-value variable (service detail: every service), so a
    panel that works for the gateway but not for notifications is caught."""
    sent = as_sent(dashboard, values)
    single = [
        variable["name"]
        for variable in dashboard.get("templating", {}).get("list", [])
        if variable["type"] == "query" and not variable.get("multi")
    ]
    assert len(single) <= 1, "one single-value variable per dashboard is understood here"
    if not single:
        return [sent]
    return [sent | {single[0]: option} for option in values.get(single[0], [])]


@contextmanager
def k6_remote_writing(lab: Lab) -> Iterator[None]:
    """`obslab load smoke --prometheus` against the lab, in the background: the load test
    dashboard's k6_* series exist only while k6 remote-writes them (one shopper, who
    buys a few times: the lab's stock is 1,000 of each product)."""
    load = subprocess.Popen(
        [OBSLAB, "load", "smoke", "--prometheus", "--vus", "1", "--duration", f"{DEADLINE_S}s"],
        env=lab.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: k6 stops with it
    )
    try:
        yield
    finally:
        if load.poll() is None:
            os.killpg(load.pid, signal.SIGINT)  # k6 stops the run and writes its summary
            try:
                load.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(load.pid, signal.SIGKILL)
                load.wait()


def test_every_promql_panel_returns_data_from_the_native_lab(lab: Lab) -> None:
    """With orders flowing through the edge and a k6 run remote-writing its metrics, each
    dashboard's PromQL queries (macros and variables as Grafana fills them, and every
    value of a single-value variable) return at least one series."""
    targets = []
    dashboards = sorted(DASHBOARDS.glob("*.json"))
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        for title, kind, expr in checks.queries_of(dashboard):
            if kind == "prometheus":
                targets.append((path.name, dashboard, title, expr))
    assert targets

    empty: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    with k6_remote_writing(lab):
        while True:
            traffic(lab)
            empty = []
            values = {}
            for path in dashboards:
                dashboard = json.loads(path.read_text())
                values[path.name] = variable_values(lab, dashboard)
                for variable, options in values[path.name].items():
                    if not options:
                        empty.append(f"{path.name}: variable {variable!r} has no values")
            for name, dashboard, title, expr in targets:
                for sent in assignments(dashboard, values[name]):
                    promql = checks.substitute(expr, sent)
                    if not query(lab, promql):
                        empty.append(f"{name}: panel {title!r}: no data for {promql}")
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(2)
    assert not empty, "\n".join(empty)


def test_every_lab_rule_evaluates_and_every_recording_rule_has_data(lab: Lab) -> None:
    """The lab's Prometheus loaded the lab profile, evaluates every rule without error,
    and each recording rule yields series from the real services' metrics (so the label
    names and bucket boundaries the rules assume are the ones the shop exports)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        traffic(lab)
        groups = httpx.get(f"{lab.prometheus}/api/v1/rules", timeout=30).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        problems = [
            f"{rule['name']}: {rule.get('lastError') or rule['health']}"
            for rule in rules
            if rule["health"] != "ok"
        ]
        problems += [
            f"recording rule {rule['name']} has no data"
            for rule in rules
            if rule["type"] == "recording" and not query(lab, rule["name"])
        ]
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {group["file"].rsplit("/", 1)[-1] for group in groups} == {
        "red.yml",
        "slo.yml",
        "alerts.yml",
    }
    assert problems == [], "\n".join(problems)
