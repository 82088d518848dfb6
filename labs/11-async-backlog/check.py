"""Lab 11, async work and backpressure: ``start`` makes the notifications worker slow
(8 s a message); the learner places orders faster than it can notify, sees the orders
confirmed at once while their events wait in RabbitMQ, heals the worker and watches
the backlog drain with nothing lost. The check reads RabbitMQ's and the services'
metrics in Prometheus since the lab started. Nothing fails: no 5xx."""

from __future__ import annotations

import time

from obslab.labkit import faults
from obslab.labkit.base import Context, Exercise, Step

FAULT = {"kind": "worker_slowdown", "ms": 8000, "duration_s": 900}
QUEUE = 'queue="notifications.order-events"'
#: Messages the worker holds (prefetch: 10) are unacked; the rest wait, ready.
WAITING = f"rabbitmq_queue_messages_ready{{{QUEUE}}} + rabbitmq_queue_messages_unacked{{{QUEUE}}}"
BACKLOG = 15


class Backlog(Exercise):
    title = "Async work: a backlog, drained"
    minutes = 30

    def start(self, context: Context) -> list[str]:
        context.record.setup = {"fault": faults.inject(context, "notifications", FAULT)}
        return ["The notifications worker now takes 8 s a message (for 15 minutes)."]

    def check(self, context: Context) -> list[Step]:
        prometheus, started = context.stack.prometheus, context.record.started_at
        since = f"{int(time.time() - started) + 10}s"
        peak = prometheus.value(f"max_over_time((sum({WAITING}))[{since}:5s])")
        placed = prometheus.grown("obslab_orders_placed_total", started)
        consumed = prometheus.grown("obslab_events_consumed_total", started)
        faulty = prometheus.value('sum(obslab_chaos_active{service="notifications"})')
        waiting = prometheus.value(f"sum({WAITING})")
        return [
            Step(
                f"at least {BACKLOG} order events waited for the worker",
                peak >= BACKLOG,
                "Place orders faster than the worker notifies (step 2): 20 in a row.",
                f"{peak:.0f} at the most",
            ),
            Step(
                "the worker is healed",
                faulty == 0,
                "Make the worker fast again (step 4); Prometheus sees it within 5 seconds.",
            ),
            Step(
                "the backlog drained",
                waiting == 0,
                "The worker still holds or waits for messages: those it took while slow"
                " finish their 8 s first. Watch the queue (step 3) empty.",
                f"{waiting:.0f} waiting",
            ),
            Step(
                "every order placed since the lab started was notified",
                placed > 0 and consumed >= placed,
                "Nothing is lost, only late: once the queue is empty, every order's event"
                " was consumed. Is Prometheus up to date (5 s)?",
                f"{consumed:.0f} events consumed, {placed:.0f} orders placed",
            ),
        ]

    def reset(self, context: Context) -> None:
        faults.remove(context, "notifications")


LAB = Backlog()
