"""Lab 7, circuit breakers: ``start`` makes the catalog's product list slow (1.5 s, over
the breakers' 1 s slow-call threshold) after warming the gateways' stale copies; the
learner sends enough reads to open the gateways' breakers to catalog, sees the stale
answers while they are open, heals catalog and sees the breakers close again. The
check reads the whole story from Prometheus since the lab started.

Nothing fails on the way: slow calls succeed, and an open breaker's reads are answered
from the last good copy (``X-Degraded: catalog-stale``). The lab makes no 5xx.
"""

from __future__ import annotations

import time

from obslab.labkit import faults
from obslab.labkit.base import Context, Exercise, LabError, Step
from obslab.prometheus import Prometheus
from obslab.shop import Shop

FAULT = {"kind": "latency", "ms": 1500, "route": "/products", "duration_s": 900}
BREAKER = 'service="gateway", downstream="catalog"'
#: Reads that warm both gateway replicas' stale copies (nginx alternates them).
WARM_READS = 6


def _open_breakers(prometheus: Prometheus) -> float:
    return prometheus.value(f'sum(obslab_breaker_state{{{BREAKER}, state!="closed"}})')


class Breakers(Exercise):
    title = "Circuit breakers: open, degrade, close"
    minutes = 30

    def start(self, context: Context) -> list[str]:
        shop = Shop(context.stack.edge)
        try:
            statuses = {shop.browse() for _ in range(WARM_READS)}
        finally:
            shop.close()
        if statuses != {200}:
            raise LabError(f"the catalog answered {sorted(statuses)}: is the shop healthy?")
        context.record.setup = {"fault": faults.inject(context, "catalog", FAULT)}
        return ["The catalog's product list now takes 1.5 s (for 15 minutes)."]

    def check(self, context: Context) -> list[Step]:
        prometheus, started = context.stack.prometheus, context.record.started_at
        window = f"{int(time.time() - started) + 10}s"
        opened = prometheus.value(
            f'max(max_over_time(obslab_breaker_state{{{BREAKER}, state="open"}}[{window}]))',
        )
        refused = prometheus.grown(
            f'obslab_breaker_calls_total{{{BREAKER}, outcome="not_permitted"}}', started
        )
        stale = prometheus.grown(
            'obslab_fallbacks_total{call_site="gateway.list_products"}', started
        )
        closed_again = prometheus.grown(
            f'obslab_breaker_transitions_total{{{BREAKER}, from_state="half_open",'
            ' to_state="closed"}',
            started,
        )
        faulty = prometheus.value('sum(obslab_chaos_active{service="catalog"})')
        return [
            Step(
                "a gateway's breaker to catalog opened",
                opened >= 1,
                "Send the reads of step 2, many at once: a replica's breaker decides once"
                " it has seen 10 calls, and there are two replicas behind nginx.",
            ),
            Step(
                "while open, it refused calls and the gateway answered from its stale copy",
                refused > 0 and stale > 0,
                "Send a few more reads while the breaker is open (step 3): how fast do they"
                " come back, and with which X-Degraded header?",
            ),
            Step(
                "catalog is healed",
                faulty == 0,
                "Remove the slowdown (step 4); Prometheus sees it within 5 seconds.",
            ),
            Step(
                "the breaker went half-open and closed again",
                closed_again > 0 and _open_breakers(prometheus) == 0,
                "A breaker only moves on calls: wait 5 s (wait_open_s), then send reads"
                " again (step 4) so that its trial calls can close it.",
            ),
        ]

    def reset(self, context: Context) -> None:
        if not context.record.setup.get("fault"):
            return
        faults.remove(context, "catalog")
        # An open breaker stays open until calls come: read until both are closed, so
        # that the lab's CircuitBreakerOpen alert resolves (a minute at most).
        shop = Shop(context.stack.edge)
        deadline = time.monotonic() + 60
        try:
            while _open_breakers(context.stack.prometheus) and time.monotonic() < deadline:
                shop.browse()
                time.sleep(0.5)
        finally:
            shop.close()


LAB = Breakers()
