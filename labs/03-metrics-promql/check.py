"""Lab 3, metrics and PromQL: the learner writes three recording rules (a rate, an
error ratio, a 95th percentile) in a rules file that ``start`` scaffolds; the check
runs promtool on it and compares each rule with the expected expression against the
lab's Prometheus (rules.py). The learner also follows an exemplar of the latency
histogram to its trace and gives that trace id.
"""

from __future__ import annotations

import time
from pathlib import Path

from obslab.labkit import rules
from obslab.labkit.base import Context, Exercise, Step, read_trace_id
from obslab.shop import Shop

#: The rules the learner writes, and what each must compute. The expected expressions
#: are the check's, never printed.
_REQUESTS = 'http_server_request_duration_seconds_count{service="gateway"}[5m]'
_ERRORS = (
    'http_server_request_duration_seconds_count{service="gateway",'
    ' http_response_status_code=~"5.."}[5m]'
)
_BUCKETS = 'http_server_request_duration_seconds_bucket{service="gateway"}[5m]'
RULES = {
    "lab3:gateway_requests:rate5m": f"sum by (http_route) (rate({_REQUESTS}))",
    "lab3:gateway_errors:ratio_rate5m": (
        f"(sum by (http_route) (rate({_ERRORS})) or sum by (http_route) (rate({_REQUESTS})) * 0)"
        f" / sum by (http_route) (rate({_REQUESTS}))"
    ),
    "lab3:gateway_request_duration_seconds:p95_5m": (
        f"histogram_quantile(0.95, sum by (http_route, le) (rate({_BUCKETS})))"
    ),
}
SCAFFOLD = """\
# Lab 3: write the expression of each rule (labs/03-metrics-promql/README.md).
# `uv run obslab lab check 3` checks this file: promtool, then each rule against the
# lab's Prometheus.
groups:
  - name: lab3
    rules:
      # Requests per second the gateway served over the last 5 minutes, by route.
      - record: lab3:gateway_requests:rate5m
        expr: vector(0)
      # The share of the gateway's requests that failed (5xx) over the last 5 minutes,
      # by route; 0 for a route that served requests and none failed.
      - record: lab3:gateway_errors:ratio_rate5m
        expr: vector(0)
      # The 95th percentile of the gateway's request duration over the last 5 minutes,
      # by route, in seconds.
      - record: lab3:gateway_request_duration_seconds:p95_5m
        expr: vector(0)
"""
ORDERS = 4


def rules_file(context: Context) -> Path:
    return context.folder() / "rules.yml"


class Promql(Exercise):
    title = "Metrics and PromQL: a recording rule"
    minutes = 40
    answer_usage = "TRACE_ID"

    def start(self, context: Context) -> list[str]:
        path = rules_file(context)
        path.write_text(SCAFFOLD)
        shop = Shop(context.stack.edge)
        try:
            for _ in range(ORDERS):
                shop.order()
                shop.browse()
        finally:
            shop.close()
        return [
            f"Placed {ORDERS} orders and read the catalog as often.",
            f"Your rules file: {path}",
        ]

    def read_answer(self, words: list[str]) -> list[str]:
        return [read_trace_id(words)]

    def check(self, context: Context) -> list[Step]:
        path = rules_file(context)
        steps = [rules.valid(path, self.number)]
        if not steps[0].passed:
            return steps
        written = rules.read(path)
        # Both expressions at one instant, in the past: a scrape that lands between the
        # two queries must not give them different samples to read (5 s scrapes).
        at = time.time() - 10
        for name, expected in RULES.items():
            if name not in written:
                steps.append(Step(f"rule {name}", False, f"{path} has no rule `{name}`."))
                continue
            expr = str(written[name].get("expr", ""))
            steps.append(
                rules.compare(context, name, expr, expected, at, "one route of the gateway")
            )
        steps.append(self._exemplar(context))
        return steps

    def _exemplar(self, context: Context) -> Step:
        title = "you followed an exemplar of the gateway's latency to its trace"
        answered = context.record.answer[0] if context.record.answer else ""
        if not answered:
            return Step(
                title,
                False,
                "Query the exemplars of the gateway's latency buckets (step 4) and give one"
                " trace id: `uv run obslab lab answer 3 <trace id>`.",
            )
        selector = 'http_server_request_duration_seconds_bucket{service="gateway"}'
        found = context.stack.prometheus.exemplars(
            selector, context.record.started_at - 60, time.time()
        )
        ids = {e["labels"].get("trace_id") for series in found for e in series.get("exemplars", [])}
        if answered not in ids:
            return Step(
                title,
                False,
                "That trace id is not an exemplar of the gateway's latency since the lab"
                " started: take one from the query of step 4.",
            )
        if not context.stack.telemetry.trace(answered):
            return Step(title, False, "No trace with that id in the store (yet): try again.")
        return Step(title, True)

    def reset(self, context: Context) -> None:
        rules_file(context).unlink(missing_ok=True)


LAB = Promql()
