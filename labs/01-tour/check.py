"""Lab 1, the tour: the lab is up, the learner placed an order, followed its trace id
from the answer's ``X-Trace-Id`` to the trace, and gave that id as the answer."""

from __future__ import annotations

from obslab.labkit.base import Context, Exercise, Step, read_trace_id

#: A checkout crosses these services (notifications after the broker hop).
CHECKOUT = {"gateway", "orders", "inventory", "payments"}


class Tour(Exercise):
    title = "Tour: an order, its trace, its metrics"
    minutes = 20
    answer_usage = "TRACE_ID"

    def read_answer(self, words: list[str]) -> list[str]:
        return [read_trace_id(words)]

    def check(self, context: Context) -> list[Step]:
        stack, record = context.stack, context.record
        up = stack.prometheus.query('up{job="services"}')
        down = sorted(s["metric"].get("service", "?") for s in up if s["value"][1] != "1")
        steps = [
            Step(
                "the lab is up: Prometheus scrapes every service",
                bool(up) and not down,
                "Run `uv run obslab status`: every component should be healthy.",
                f"not scraped: {', '.join(down)}" if down else "",
            )
        ]
        mine = [
            t
            for t in stack.telemetry.traces(route="/api/orders", limit=200)
            if t["start_ns"] >= record.started_ns and t["root_service"] == "gateway"
        ]
        steps.append(
            Step(
                "you placed an order since `obslab lab start 1`",
                bool(mine),
                "Place an order with the curl command of step 2 (traces reach the store"
                " a few seconds after the answer).",
            )
        )
        answered = record.answer[0] if record.answer else ""
        found = next((t for t in mine if t["trace_id"] == answered), None)
        steps.append(
            Step(
                "you gave the trace id of your order",
                found is not None,
                "Copy the X-Trace-Id header of your order's answer (curl -i shows headers)"
                " and run `uv run obslab lab answer 1 <trace id>`."
                if not answered
                else "That id is not one of the orders you placed since the lab started:"
                " take the X-Trace-Id of an order's answer, not of a catalog read.",
            )
        )
        crossed = set(found["services"]) if found else set()
        steps.append(
            Step(
                "your order's trace crosses gateway, orders, inventory and payments",
                crossed >= CHECKOUT,
                "Open it with `uv run obslab trace <trace id>`: a confirmed order shows"
                " every service; was this one refused before it reached them (a 4xx)?",
            )
        )
        return steps


LAB = Tour()
