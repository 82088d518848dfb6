"""The request's deadline, carried from service to service so no one works for nothing.

A client that gave up after 500 ms gains nothing from a gateway that keeps its
order waiting 2 s on a slow payment. So every request has a *budget*: the
middleware starts it when the request arrives (the smaller of what the caller
sent in ``Request-Timeout`` and the service's own ``request_budget_s``), keeps
its end in a context variable, and :class:`obskit.ServiceClient`

* refuses to call when the budget is spent (:class:`DeadlineExceeded`, 504,
  no request sent);
* waits for each attempt at most min(the per-call timeout, the budget left);
* sends that wait downstream in ``Request-Timeout``, less a little headroom
  (10 %, at most 50 ms), so the next service starts with a bit less than its
  caller will still wait for it.

Why the headroom: when the callee's own downstream is slow, the callee must give
up first and answer 504 ``deadline_exceeded``, a refusal its caller's breaker does
not hold against it. Told exactly the caller's wait, it would answer a moment too
late: the caller would see its own timeout, count the callee as slow and failing,
and open a breaker to a service that is healthy (orders, when only payments is slow).

The header holds seconds, relative (``Request-Timeout: 0.45``), rather than an
absolute time: the hosts' clocks need not agree. A value that is not a plain
decimal number (``abc``, ``-1``, ``nan``, ``1e9``) is ignored, as if absent; ``0``
means the caller has given up already, and is answered 504 at once.

Examples, with ``request_budget_s=10`` and a per-call timeout of 5 s:

=======================  ============  ==================  ===========  ==========================
``Request-Timeout`` in   budget left   one call waits      sends on     note
=======================  ============  ==================  ===========  ==========================
(none)                   10 s          5 s                 4.95 s       the per-call timeout
``30``                   10 s          5 s                 4.95 s       the service caps the caller
``0.8``                  0.8 s         0.8 s               0.75 s
``0.8``, 0.5 s spent     0.3 s         0.3 s               0.27 s       a timeout: deadline_exceeded
``0.8``, 0.8 s spent     0 s           no call             --           504 ``deadline_exceeded``
``0``                    0 s           nothing runs        --           504 ``deadline_exceeded``
``abc``                  10 s          5 s                 4.95 s       a bad header is ignored
=======================  ============  ==================  ===========  ==========================

A compensation (releasing the stock of an order that failed) must run even
when the caller has gone: it calls with ``within_deadline=False``.

The public edge (the gateway) ignores the header (``deadline_from_caller=False``)
and keeps its own budget: a timeout counts against a downstream's breaker, so a
client sending ``Request-Timeout: 0.001`` could otherwise open the breakers for
every other client. Only our own services are trusted with the budget.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from obskit._errors import DeadlineExceeded

#: The header that carries the caller's remaining budget, in seconds.
DEADLINE_HEADER = "Request-Timeout"

# Seven digits of seconds (115 days) at most, three decimals at most: anything else
# (signs, exponents, nan, inf, spaces) is not a budget a caller means.
_BUDGET = re.compile(r"\d{1,7}(\.\d{1,3})?")

_deadline: ContextVar[float | None] = ContextVar("obskit_deadline", default=None)


def parse_budget(value: str | None) -> float | None:
    """The budget a ``Request-Timeout`` header holds, or ``None`` if it holds none."""
    if value is None or not _BUDGET.fullmatch(value.strip()):
        return None
    return float(value)


def remaining() -> float | None:
    """Seconds left of the current request's budget (0 when spent); ``None``: no deadline."""
    end = _deadline.get()
    return None if end is None else max(0.0, end - time.monotonic())


@contextmanager
def deadline(budget_s: float | None) -> Iterator[None]:
    """Run the block with at most ``budget_s`` seconds, within any deadline already set."""
    left = remaining()
    if budget_s is None and left is None:
        yield
        return
    budget = min(b for b in (budget_s, left) if b is not None)
    token = _deadline.set(time.monotonic() + budget)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def without_deadline() -> Iterator[None]:
    """Run the block with no deadline (a compensation that must finish anyway)."""
    token = _deadline.set(None)
    try:
        yield
    finally:
        _deadline.reset(token)


def downstream_budget(wait_s: float) -> float:
    """What to tell a callee we will wait ``wait_s`` for: a little less (see above)."""
    return wait_s - min(0.05, wait_s * 0.1)


def call_timeout(timeout_s: float, downstream: str) -> tuple[float, bool]:
    """How long one call may wait, and whether the deadline (not the timeout) set it.

    Raises :class:`DeadlineExceeded` when the budget is spent: the call is not made.
    """
    left = remaining()
    if left is None or left >= timeout_s:
        return timeout_s, False
    if left <= 0:
        raise DeadlineExceeded(
            f"The request's time budget is spent: {downstream} is not called.",
            details=[{"downstream": downstream}],
        )
    return left, True
