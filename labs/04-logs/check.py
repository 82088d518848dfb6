"""Lab 4, logs: ``start`` places a few orders, one of them with the card the simulated
bank always declines, at a random place among them; the learner finds the failed
payment in the services' structured logs, follows its trace id to every log line of
that order in every service, and answers with the trace id and the order id (which
only the log lines carry: the 402 answer has none)."""

from __future__ import annotations

import random
import re

from obslab.labkit.base import Context, Exercise, LabError, Step, read_trace_id
from obslab.shop import DECLINED_CARD, GOOD_CARD, Shop

ORDERS = 5
ORDER_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Logs(Exercise):
    title = "Logs: a failed payment"
    minutes = 25
    answer_usage = "TRACE_ID ORDER_ID"

    def start(self, context: Context) -> list[str]:
        declined_at = random.SystemRandom().randrange(ORDERS)
        shop = Shop(context.stack.edge)
        try:
            placed = [
                shop.order(card=DECLINED_CARD if n == declined_at else GOOD_CARD)
                for n in range(ORDERS)
            ]
        finally:
            shop.close()
        failed = placed[declined_at]
        if failed.status != 402:
            raise LabError(f"the declined order was answered {failed.status}, not 402: try again")
        context.record.setup = {"trace_id": failed.trace_id}
        return [f"Placed {ORDERS} orders; one of them failed. Which, and why?"]

    def read_answer(self, words: list[str]) -> list[str]:
        if len(words) != 2:
            raise LabError("Answer with the trace id and the order id: TRACE_ID ORDER_ID.")
        trace_id = read_trace_id(words[:1])
        if not ORDER_ID.match(words[1].lower()):
            raise LabError(f"{words[1]!r} is not an order id (a UUID, as in the log lines).")
        return [trace_id, words[1].lower()]

    def check(self, context: Context) -> list[Step]:
        setup, answer = context.record.setup, context.record.answer
        trace_id, order_id = answer if answer else ("", "")
        right_trace = trace_id == setup["trace_id"]
        orders_in_trace = {
            str(line["attributes"].get("order_id"))
            for line in (context.stack.telemetry.logs(trace_id) if right_trace else [])
        }
        return [
            Step(
                "you gave an answer",
                bool(answer),
                "Find the payment that failed in the payments service's log (step 2), then"
                " `uv run obslab lab answer 4 TRACE_ID ORDER_ID`.",
            ),
            Step(
                "the trace id is the failed payment's",
                right_trace,
                "Among the orders the lab placed, one payment was declined: search the"
                " payments log for the event that says so, and take that line's trace_id.",
            ),
            Step(
                "the order id is that order's",
                right_trace and order_id in orders_in_trace,
                "Read every log line of that trace (`uv run obslab logs --trace <id>`):"
                " several services name the order they worked on.",
            ),
        ]


LAB = Logs()
