"""A bulkhead per downstream service: at most ``limit`` calls to it in flight.

When one dependency becomes slow, the calls to it pile up and hold the worker's
connections, memory and event-loop time, until the calls to the *healthy*
dependencies suffer too. The bulkhead caps the calls to each downstream and
refuses the next one at once (:class:`BulkheadFull`, a 503 with ``Retry-After``)
rather than queueing it: a queue would only turn the overload into latency.
This is Resilience4j's semaphore bulkhead with no wait.

Exports ``obslab_bulkhead_in_use``, ``obslab_bulkhead_limit`` and
``obslab_bulkhead_rejected_total``, labelled by ``downstream``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge

from obskit._errors import BulkheadFull

BULKHEAD_IN_USE = Gauge(
    "obslab_bulkhead_in_use", "Calls to a downstream in flight now.", ["downstream"]
)
BULKHEAD_LIMIT = Gauge(
    "obslab_bulkhead_limit", "The most calls to a downstream allowed in flight.", ["downstream"]
)
BULKHEAD_REJECTED = Counter(
    "obslab_bulkhead_rejected",
    "Calls to a downstream refused because its bulkhead was full.",
    ["downstream"],
)


class Bulkhead:
    """Counts the calls in flight to one downstream and refuses those over the limit."""

    def __init__(self, downstream: str, limit: int) -> None:
        self.downstream, self.limit = downstream, limit
        self.in_use = 0
        BULKHEAD_LIMIT.labels(downstream).set(limit)
        BULKHEAD_IN_USE.labels(downstream).set(0)
        BULKHEAD_REJECTED.labels(downstream)  # at 0 from the start, for rate()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots for the duration of a call, or raise :class:`BulkheadFull`.

        A plain counter is enough: asyncio switches tasks only at an ``await``, and
        there is none between the check and the increment.
        """
        if self.in_use >= self.limit:
            BULKHEAD_REJECTED.labels(self.downstream).inc()
            raise BulkheadFull(
                f"Too many calls to {self.downstream} are in flight already.",
                details=[{"downstream": self.downstream, "limit": self.limit}],
                headers={"Retry-After": "1"},
            )
        self.in_use += 1
        BULKHEAD_IN_USE.labels(self.downstream).inc()
        try:
            yield
        finally:
            self.in_use -= 1
            BULKHEAD_IN_USE.labels(self.downstream).dec()
