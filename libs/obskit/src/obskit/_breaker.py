"""A circuit breaker per downstream service, with Resilience4j's semantics.

Why our own: the Python breakers (``pybreaker``, ``aiobreaker``, ``circuitbreaker``,
``purgatory``) open after a number of *consecutive* failures. None keeps a sliding
window of calls to compute a failure *rate*, none counts slow calls, and none
limits the trial calls of the half-open state; those are what make a breaker
behave well under real traffic (one error in a thousand calls never opens it, a
dependency that became slow does). This module is that, and only that.

The states, as in Resilience4j::

            failure rate or slow-call rate ≥ threshold
            (once the window holds minimum_calls calls)
    CLOSED ──────────────────────────────────────────────► OPEN ◄──┐
       ▲                                                   │       │ a trial call's rates
       │ the trial calls' rates are below the thresholds   │ wait  │ are above a threshold
       │                                                   ▼       │
       └──────────────────────────────────────────────── HALF_OPEN ┘
                                          (half_open_calls trial calls permitted)

* CLOSED: every call is permitted and recorded in a sliding window, either of the
  last ``window_size`` calls (``count``) or of the calls of the last
  ``window_size`` seconds (``time``, kept in one-second buckets). A call fails
  when the caller says so (a 5xx, a timeout, no connection); it is slow when it
  took ``slow_call_s`` or longer, whatever its outcome.
* OPEN: no call is permitted (:class:`CircuitOpen`, counted ``not_permitted``)
  until ``wait_open_s`` has passed; the first call after that moves it to
  HALF_OPEN (Resilience4j's default: no timer, the next call makes the move).
* HALF_OPEN: ``half_open_calls`` trial calls are permitted, the rest rejected;
  when all trials have ended, their rates decide: OPEN again, or CLOSED with a
  fresh window.

It needs no lock: asyncio runs one coroutine at a time and every method here is
synchronous, so a state change can never interleave with another.

Each breaker exports ``obslab_breaker_state``, ``obslab_breaker_calls_total``,
``obslab_breaker_failure_rate``, ``obslab_breaker_slow_call_rate`` and
``obslab_breaker_transitions_total``, labelled by ``downstream``; each transition
is also a log event (``breaker.opened``, ``breaker.half_opened``,
``breaker.closed``) and an event on the current span.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from obskit._errors import CircuitOpen

log = structlog.get_logger("obskit.breaker")

State = Literal["closed", "open", "half_open"]
STATES: tuple[State, ...] = ("closed", "open", "half_open")
Clock = Callable[[], float]

BREAKER_STATE = Gauge(
    "obslab_breaker_state",
    "1 for the state each circuit breaker is in (closed, open, half_open), 0 for the others.",
    ["downstream", "state"],
)
BREAKER_CALLS = Counter(
    "obslab_breaker_calls",
    "Calls through a circuit breaker, by outcome: successful, failed, slow_successful, "
    "slow_failed, or not_permitted (rejected while open or half-open).",
    ["downstream", "outcome"],
)
BREAKER_FAILURE_RATE = Gauge(
    "obslab_breaker_failure_rate",
    "Share of failed calls in the breaker's current window (0..1).",
    ["downstream"],
)
BREAKER_SLOW_CALL_RATE = Gauge(
    "obslab_breaker_slow_call_rate",
    "Share of slow calls in the breaker's current window (0..1).",
    ["downstream"],
)
BREAKER_TRANSITIONS = Counter(
    "obslab_breaker_transitions",
    "Circuit breaker state changes.",
    ["downstream", "from_state", "to_state"],
)

OUTCOMES = ("successful", "failed", "slow_successful", "slow_failed", "not_permitted")
#: The moves a breaker can make.
TRANSITIONS = (
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
)

_EVENTS: dict[State, str] = {
    "open": "breaker.opened",
    "half_open": "breaker.half_opened",
    "closed": "breaker.closed",
}


@dataclass(frozen=True)
class BreakerConfig:
    """How a breaker decides; the defaults of :class:`obskit.ServiceSettings` explain each."""

    window_type: Literal["count", "time"] = "count"
    #: Calls (``count``) or seconds (``time``) the window covers.
    window_size: int = 20
    minimum_calls: int = 10
    failure_rate: float = 0.5
    slow_call_rate: float = 0.5
    slow_call_s: float = 1.0
    wait_open_s: float = 5.0
    half_open_calls: int = 3


class _CountWindow:
    """The outcomes of the last ``size`` calls, with running totals (O(1) per call)."""

    def __init__(self, size: int) -> None:
        self._calls: deque[tuple[bool, bool]] = deque(maxlen=size)
        self._failed = self._slow = 0

    def record(self, failed: bool, slow: bool) -> None:
        if len(self._calls) == self._calls.maxlen:  # the oldest call drops out
            old_failed, old_slow = self._calls[0]
            self._failed -= old_failed
            self._slow -= old_slow
        self._calls.append((failed, slow))
        self._failed += failed
        self._slow += slow

    def totals(self) -> tuple[int, int, int]:
        """(calls, failed, slow) in the window."""
        return len(self._calls), self._failed, self._slow


class _TimeWindow:
    """The outcomes of the calls of the last ``size`` seconds, in one-second buckets."""

    def __init__(self, size: int, clock: Clock) -> None:
        self._size, self._clock = size, clock
        # second → [calls, failed, slow]; at most ``size`` buckets are ever kept.
        self._buckets: dict[int, list[int]] = {}

    def _evict(self) -> int:
        now = int(self._clock())
        for second in [s for s in self._buckets if s <= now - self._size]:
            del self._buckets[second]
        return now

    def record(self, failed: bool, slow: bool) -> None:
        bucket = self._buckets.setdefault(self._evict(), [0, 0, 0])
        bucket[0] += 1
        bucket[1] += failed
        bucket[2] += slow

    def totals(self) -> tuple[int, int, int]:
        self._evict()
        calls, failed, slow = (sum(b[i] for b in self._buckets.values()) for i in range(3))
        return calls, failed, slow


class CircuitBreaker:
    """Permits or rejects calls to one downstream, from the outcomes of the recent ones.

    Use: ``permit = breaker.permit()`` before the call (raises :class:`CircuitOpen`),
    then exactly one of ``record(permit, failed, duration_s)`` when the call ended or
    ``release(permit)`` when its outcome says nothing about the downstream (the
    caller gave up, say). The permit tells which state the call was let through in:
    a call that outlives its state (a slow call from before the breaker opened) is
    counted, but cannot decide for the trials of a later half-open state.
    """

    def __init__(
        self, downstream: str, config: BreakerConfig, *, clock: Clock = time.monotonic
    ) -> None:
        self.downstream, self.config, self._clock = downstream, config, clock
        self.state: State = "closed"
        self._epoch = 0  # one more at every transition: which state a permit belongs to
        self._opened_at = 0.0
        self._trials_left = 0  # permits still to hand out in half-open
        self._trials_running = 0
        self._window = self._new_window()
        # A count window never holds more than its size (Resilience4j caps it too).
        self._minimum_calls = config.minimum_calls
        if config.window_type == "count":
            self._minimum_calls = min(config.minimum_calls, config.window_size)
        self._export_state()
        self._export_rates(0, 0, 0)
        # Every series from the start at 0, so rate() and alerts see the first event.
        for outcome in OUTCOMES:
            BREAKER_CALLS.labels(downstream, outcome)
        for before, after in TRANSITIONS:
            BREAKER_TRANSITIONS.labels(downstream, before, after)

    def _new_window(self) -> _CountWindow | _TimeWindow:
        if self.state == "half_open":  # the trials are judged on their own
            return _CountWindow(self.config.half_open_calls)
        if self.config.window_type == "time":
            return _TimeWindow(self.config.window_size, self._clock)
        return _CountWindow(self.config.window_size)

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.config.wait_open_s - self._clock())

    def permit(self) -> int:
        """Let a call through, or raise :class:`CircuitOpen` (counted ``not_permitted``)."""
        if self.state == "open" and self.retry_after_s() == 0:
            self._move_to("half_open")
        if self.state == "closed":
            return self._epoch
        if self.state == "half_open" and self._trials_left > 0:
            self._trials_left -= 1
            self._trials_running += 1
            return self._epoch
        BREAKER_CALLS.labels(self.downstream, "not_permitted").inc()
        wait = max(1, round(self.retry_after_s()))
        raise CircuitOpen(
            f"The circuit to {self.downstream} is open: it is failing, so it is not called.",
            details=[{"downstream": self.downstream, "state": self.state}],
            headers={"Retry-After": str(wait)},
        )

    def record(self, permit: int, failed: bool, duration_s: float) -> None:
        """Record a permitted call's outcome, and change state if the rates say so."""
        slow = duration_s >= self.config.slow_call_s
        outcome = ("slow_" if slow else "") + ("failed" if failed else "successful")
        BREAKER_CALLS.labels(self.downstream, outcome).inc()
        if permit != self._epoch or self.state == "open":
            return  # let through in an earlier state, whose decision is already made
        trial = self.state == "half_open"
        if trial:
            self._trials_running -= 1
        self._window.record(failed, slow)
        calls, failures, slows = self._window.totals()
        self._export_rates(calls, failures, slows)
        if trial and (self._trials_left > 0 or self._trials_running > 0):
            return  # judge the trials together, once they have all ended
        if calls < (self.config.half_open_calls if trial else self._minimum_calls):
            return
        if (
            failures / calls >= self.config.failure_rate
            or slows / calls >= self.config.slow_call_rate
        ):
            self._move_to("open")
        elif trial:
            self._move_to("closed")

    def release(self, permit: int) -> None:
        """Give back a permit whose call has no outcome to record (it was cancelled)."""
        if permit == self._epoch and self.state == "half_open":
            self._trials_running -= 1
            self._trials_left += 1

    def _move_to(self, state: State) -> None:
        before, self.state = self.state, state
        self._epoch += 1
        if state == "open":
            self._opened_at = self._clock()
        if state == "half_open":
            self._trials_left, self._trials_running = self.config.half_open_calls, 0
        rates = self._window.totals()
        self._window = self._new_window()
        BREAKER_TRANSITIONS.labels(self.downstream, before, state).inc()
        self._export_state()
        if state != "open":  # an open breaker keeps showing the rates that opened it
            self._export_rates(0, 0, 0)
        calls, failures, slows = rates
        fields: dict[str, str | float] = {
            "downstream": self.downstream,
            "from_state": before,
            "to_state": state,
            "failure_rate": round(failures / calls, 3) if calls else 0.0,
            "slow_call_rate": round(slows / calls, 3) if calls else 0.0,
        }
        emit = log.warning if state == "open" else log.info
        emit(_EVENTS[state], **fields)
        trace.get_current_span().add_event(_EVENTS[state], fields)

    def _export_state(self) -> None:
        for state in STATES:
            BREAKER_STATE.labels(self.downstream, state).set(1 if state == self.state else 0)

    def _export_rates(self, calls: int, failures: int, slows: int) -> None:
        BREAKER_FAILURE_RATE.labels(self.downstream).set(failures / calls if calls else 0.0)
        BREAKER_SLOW_CALL_RATE.labels(self.downstream).set(slows / calls if calls else 0.0)
