"""Lab 9, SLOs and burn rates: the learner writes the availability SLI of the public
API over two windows (5 minutes, 1 hour) as recording rules, and a fast-burn page that
needs both, in a rules file that ``start`` scaffolds.

The check compares the two ratios with the lab's own SLI on the live Prometheus
(rules.py), then runs promtool unit tests that the check writes next to the file, on
made-up series a live lab could not produce without failing orders on purpose: a
sustained burn must page, a two-minute blip must not (why the long window), and the
page must stop within minutes of the burn ending (why the short window). No request
of the lab fails for this lab: it creates no 5xx.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from obslab import slo
from obslab.labkit import rules
from obslab.labkit.base import Context, Exercise, Step
from obslab.shop import Shop

SLOS = slo.load()
OBJECTIVE = SLOS.availability.objective
#: The fastest burn that pages (14.4x: 2% of a 30-day budget in one hour).
FAST_BURN = SLOS.fast_burn().factor
ALERT = "Lab9AvailabilityFastBurn"
_API = 'service="gateway", http_route=~"/api/.*"'
_ALL = f"http_server_request_duration_seconds_count{{{_API}}}"
_FAILED = f'http_server_request_duration_seconds_count{{{_API}, http_response_status_code=~"5.."}}'
#: The two ratios, as the lab's own SLI computes them (rules/lab/slo.yml), never printed.
RULES = {
    f"lab9:sli_error:ratio_rate{window}": (
        f"(sum(rate({_FAILED}[{window}])) or vector(0)) / sum(rate({_ALL}[{window}]))"
    )
    for window in ("5m", "1h")
}
SCAFFOLD = f"""\
# Lab 9: the availability SLI over two windows, and a fast-burn page
# (labs/09-slo-burn-rates/README.md). `uv run obslab lab check 9` checks this file.
groups:
  - name: lab9
    rules:
      # The share of the public API's requests (the gateway's /api/... routes) that
      # failed (5xx) over the last 5 minutes: one series, no labels; 0 when none failed.
      - record: lab9:sli_error:ratio_rate5m
        expr: vector(0)
      # The same over the last hour.
      - record: lab9:sli_error:ratio_rate1h
        expr: vector(0)
      # Page when the error budget of the {OBJECTIVE:.1%} objective burns {FAST_BURN}x
      # too fast, and it is not a blip. Labels only (the check's tests compare labels).
      - alert: {ALERT}
        expr: vector(0) > 1
        labels:
          severity: page
"""
ORDERS = 3

#: The made-up series of the unit tests, one sample a minute: requests of the public
#: API that succeeded and that failed, and one health check failing (not the API's).
_OK = 'http_server_request_duration_seconds_count{service="gateway", http_route="/api/orders", http_response_status_code="201"}'  # noqa: E501
_ERR = _OK.replace('"201"', '"503"')
_HEALTH = _OK.replace("/api/orders", "/health/ready").replace('"201"', '"503"')
#: 10% of requests fail for an hour (a 20x burn), then none.
SUSTAINED = [
    {"series": _OK, "values": "0+540x60 33000+600x29"},
    {"series": _ERR, "values": "0+60x60 3600x29"},
    {"series": _HEALTH, "values": "0+600x90"},
]
#: Every request fails for two minutes after a clean hour (a 6.7x burn over the hour).
BLIP = [
    {"series": _OK, "values": "0+600x60 36000 36000 36600+600x30"},
    {"series": _ERR, "values": "0x60 600 1200 1200x30"},
]
#: No request fails at all: there is no 5xx series.
CLEAN = [{"series": _OK, "values": "0+600x40"}]


def _samples(window: str, at: str, value: float) -> dict[str, Any]:
    name = f"lab9:sli_error:ratio_rate{window}"
    return {"expr": name, "eval_time": at, "exp_samples": [{"labels": name, "value": value}]}


def _alert(at: str, pages: bool) -> dict[str, Any]:
    expected = [{"exp_labels": {"severity": "page"}}] if pages else []
    return {"alertname": ALERT, "eval_time": at, "exp_alerts": expected}


#: (step, hint, the promtool test groups: series and what they must give)
TESTS: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "the two ratios are right on made-up series (promtool test rules)",
        "With 10% of the API's requests failing, both ratios must read 0.1 (only /api/..."
        " routes count); with none failing, 0, also when no 5xx series exists at all.",
        [
            {
                "input_series": SUSTAINED,
                "promql_expr_test": [
                    _samples("5m", "58m", 0.1),
                    _samples("1h", "58m", 0.1),
                    _samples("5m", "80m", 0),
                ],
            },
            {
                "input_series": CLEAN,
                "promql_expr_test": [_samples("5m", "30m", 0), _samples("1h", "30m", 0)],
            },
        ],
    ),
    (
        f"{ALERT} pages during a sustained burn",
        "10% of requests failing for an hour burns the 0.5% budget 20x: both windows are"
        f" above {FAST_BURN}x. Compare each ratio with {FAST_BURN} * (1 - objective).",
        [{"input_series": SUSTAINED, "alert_rule_test": [_alert("58m", pages=True)]}],
    ),
    (
        f"{ALERT} does not page for a two-minute blip",
        "Two minutes of failures after a clean hour: the 5m window burns 80x, the hour"
        " 6.7x. Which window keeps a blip from paging?",
        [{"input_series": BLIP, "alert_rule_test": [_alert("64m", pages=False)]}],
    ),
    (
        f"{ALERT} stops paging soon after the burn ends",
        "Ten minutes after the failures stopped, the last hour still burns 16x, the last 5"
        " minutes 0x. Which window lets the page resolve once the fire is out?",
        [{"input_series": SUSTAINED, "alert_rule_test": [_alert("70m", pages=False)]}],
    ),
]


def rules_file(context: Context) -> Path:
    return context.folder() / "slo.yml"


def unit_test(context: Context, rules_path: Path, number: int) -> Step:
    """Run one of :data:`TESTS` with promtool, on the learner's rules."""
    name, hint, groups = TESTS[number]
    return rules.unit_test(context, rules_path, name, hint, groups, f"test-{number}.yml")


class Slo(Exercise):
    title = "SLOs and burn rates: two windows"
    minutes = 35

    def start(self, context: Context) -> list[str]:
        path = rules_file(context)
        path.write_text(SCAFFOLD)
        shop = Shop(context.stack.edge)
        try:
            for _ in range(ORDERS):
                shop.order()
        finally:
            shop.close()
        return [f"Placed {ORDERS} orders.", f"Your rules file: {path}"]

    def check(self, context: Context) -> list[Step]:
        path = rules_file(context)
        steps = [rules.valid(path, self.number)]
        if not steps[0].passed:
            return steps
        written = rules.read(path)
        missing = [name for name in [*RULES, ALERT] if name not in written]
        if missing:
            return [*steps, Step(f"rule {missing[0]}", False, f"{path} has no `{missing[0]}`.")]
        at = time.time() - 10  # in the past: no scrape between the two queries
        for name, expected in RULES.items():
            expr = str(written[name].get("expr", ""))
            steps.append(rules.compare(context, name, expr, expected, at, "the whole API"))
        steps.extend(unit_test(context, path, n) for n in range(len(TESTS)))
        return steps

    def reset(self, context: Context) -> None:
        for path in context.folder().glob("*.yml"):
            path.unlink()


LAB = Slo()
