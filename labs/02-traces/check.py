"""Lab 2, traces: ``start`` hides a slowdown in one service of the checkout, chosen at
random, with the chaos machinery (the same faults as ``obslab chaos inject``), and
places a few orders; the learner finds which service is slow, and why (its database
queries or its own code), from the traces alone, in the spirit of Jaeger's HotROD.

The fault lasts half an hour (``reset`` clears it sooner). The check compares the
learner's answer with what start chose; it never names the service.
"""

from __future__ import annotations

import random

from obslab.labkit import faults
from obslab.labkit.base import Context, Exercise, LabError, Step
from obslab.shop import Shop

#: (service, cause): where the slowdown may hide. All are on a checkout's path, so
#: every order's trace carries it; the gateway is never the one (it is where a
#: trace starts, the first place anyone looks).
HIDEOUTS = [
    ("inventory", "database"),
    ("payments", "database"),
    ("orders", "database"),
    ("inventory", "code"),
    ("payments", "code"),
]
CAUSES = {"database", "code"}
SERVICES = sorted({service for service, _ in HIDEOUTS} | {"gateway", "notifications"})
#: Slow enough to stand out of a checkout (100-300 ms on a laptop), short of every
#: timeout (5 s a call): the shop stays correct, only slow.
FAULTS = {
    "database": {"kind": "slow_dependency", "dependency": "database", "ms": 250},
    "code": {"kind": "latency", "ms": 600},
}
DURATION_S = 1800
ORDERS = 3


class Traces(Exercise):
    title = "Traces: find the slow service"
    minutes = 30
    answer_usage = "SERVICE database|code"

    def start(self, context: Context) -> list[str]:
        service, cause = random.SystemRandom().choice(HIDEOUTS)
        fault = faults.inject(context, service, {**FAULTS[cause], "duration_s": DURATION_S})
        context.record.setup = {"service": service, "cause": cause, "fault": fault}
        shop = Shop(context.stack.edge)
        try:
            placed = [shop.order() for _ in range(ORDERS)]
        finally:
            shop.close()
        confirmed = sum(p.status == 201 for p in placed)
        return [
            "Something in the checkout is slow now (for 30 minutes).",
            f"Placed {len(placed)} orders to look at ({confirmed} confirmed).",
        ]

    def read_answer(self, words: list[str]) -> list[str]:
        if len(words) != 2:
            raise LabError("Answer with the service and the cause: `payments code`.")
        service, cause = (word.lower() for word in words)
        if service not in SERVICES:
            raise LabError(f"{service!r} is not a service of the checkout: {', '.join(SERVICES)}.")
        if cause not in CAUSES:
            raise LabError(f"The cause is `database` or `code`, not {cause!r}.")
        return [service, cause]

    def check(self, context: Context) -> list[Step]:
        setup, answer = context.record.setup, context.record.answer
        service, cause = answer if answer else ("", "")
        right_service = service == setup["service"]
        return [
            Step(
                "you named a service",
                bool(service),
                "List slow traces (`uv run obslab traces --min-ms 500`), open one with"
                " `uv run obslab trace <id>`, then `uv run obslab lab answer 2 SERVICE CAUSE`.",
            ),
            Step(
                "the slow service is the one you named",
                right_service,
                "Look for the span whose own time is long, not the spans that are long"
                " because they wait for a child: a parent's bar always covers its children.",
            ),
            Step(
                "the cause is the one you named",
                right_service and cause == setup["cause"],
                "Inside that service, is the time in spans of database queries"
                " (db.statement) or in the service's own span, around its children?",
            ),
        ]

    def reset(self, context: Context) -> None:
        if context.record.setup.get("fault"):
            faults.remove(context, context.record.setup["service"])


LAB = Traces()
