"""Lab 8, load testing with k6: ``start`` makes every charge cost payments 100 ms of
CPU (a ``cpu`` chaos fault: a busy loop in its event loop), so that the shop's knee
comes within a short run on any laptop; the learner reads the SLO thresholds,
runs a breakpoint test, and answers the arrival rate at which checkout's p99 crossed
its objective and the component that was busiest then.

``obslab load breakpoint`` writes what it printed to the lab's runtime folder
(``load/breakpoint.windows.json``: per 10 s, the arrival rate, p95, p99 and busiest
component), so the check compares the answer with the learner's own run, whatever the
machine: it never names the rate or the component.
"""

from __future__ import annotations

import json
from typing import Any

from obslab.labkit import faults
from obslab.labkit.base import Context, Exercise, LabError, Step
from obslab.load import knee
from obslab.load.k6 import read_slo

FAULT = {"kind": "cpu", "ms": 100, "route": "/charges", "duration_s": 1800}
#: How far the rate answered may be from the run's: read off a table of 10 s windows.
TOLERANCE = 0.15


def _windows(context: Context) -> list[dict[str, Any]] | None:
    """The windows of the last breakpoint run, if it ran since the lab started."""
    path = context.settings.path("load", "breakpoint.windows.json")
    try:
        if path.stat().st_mtime < context.record.started_at:
            return None
        return list(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError):
        return None


class Knee(Exercise):
    title = "Load testing with k6: find the knee"
    minutes = 30
    answer_usage = "ORDERS_PER_S COMPONENT"

    def start(self, context: Context) -> list[str]:
        context.record.setup = {"fault": faults.inject(context, "payments", FAULT)}
        return ["Each charge now costs payments 100 ms of CPU (for 30 minutes)."]

    def read_answer(self, words: list[str]) -> list[str]:
        usage = "Answer with the orders per second and the busiest component: `8 6.5 orders`."
        if len(words) != 2:
            raise LabError(usage)
        try:
            rate = float(words[0].lower().removesuffix("/s"))
        except ValueError:
            raise LabError(f"{words[0]!r} is not a number of orders per second. {usage}") from None
        if not 0 < rate < 10_000:
            raise LabError(f"{words[0]!r} is not an arrival rate. {usage}")
        return [f"{rate:g}", words[1].lower()]

    def check(self, context: Context) -> list[Step]:
        windows = _windows(context)
        limit = read_slo()["place_order"]["p99_ms"]
        # The run is the learner's breakpoint run, which k6 stops once the SLO broke.
        broke = knee.crossing(windows or [], "p99_ms", limit, stopped=True)
        answer = context.record.answer
        rate, component = (float(answer[0]), answer[1]) if answer else (0.0, "")
        return [
            Step(
                "a breakpoint run since the lab started",
                windows is not None,
                "Run the breakpoint test of step 3 against the lab: `uv run obslab load"
                " breakpoint …` (the check reads what it wrote).",
            ),
            Step(
                "the run went past the knee",
                broke is not None,
                f"Checkout's p99 never stayed above {limit:.0f} ms: raise --rate (the arrival"
                " rate it climbs to) or give it a longer --duration.",
            ),
            Step(
                "the rate you named is where checkout's p99 crossed its SLO",
                broke is not None and abs(rate - broke["rate"]) <= TOLERANCE * broke["rate"],
                "Read the table `checkout per 10 s` your run printed: the first window whose"
                " p99 is over the objective and stays over (or ends the run), its orders/s"
                " (step 4).",
            ),
            Step(
                "the component you named was the busiest then",
                broke is not None and component == broke["busiest"],
                "The same line of the table names the busiest lab process in that window"
                " (the load generator aside); answer with its name as printed.",
            ),
        ]

    def reset(self, context: Context) -> None:
        faults.remove(context, "payments")


LAB = Knee()
