"""The circuit breaker through every transition, on a clock the tests move by hand."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from obskit import BreakerConfig, CircuitBreaker, CircuitOpen


class Clock:
    """A monotonic clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **config: Any) -> CircuitBreaker:
    """A breaker with a downstream name of its own, so its metrics are this test's."""
    settings: dict[str, Any] = {"window_size": 10, "minimum_calls": 4, "wait_open_s": 5.0}
    config = BreakerConfig(**{**settings, **config})
    return CircuitBreaker(f"down-{uuid.uuid4().hex[:8]}", config, clock=clock)


def call(b: CircuitBreaker, *, failed: bool = False, duration_s: float = 0.01) -> None:
    """One call through ``b`` that ends as told."""
    b.record(b.permit(), failed, duration_s)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_it_stays_closed_below_the_minimum_number_of_calls() -> None:
    """Three failures out of three calls never open it while four calls are the minimum."""
    b = breaker(Clock())
    for _ in range(3):
        call(b, failed=True)
    assert b.state == "closed"


def test_a_minimum_above_the_count_window_is_capped_at_its_size() -> None:
    """A count window of 3 with a minimum of 10 still opens once its 3 calls have failed."""
    b = breaker(Clock(), window_size=3, minimum_calls=10)
    for _ in range(3):
        call(b, failed=True)
    assert b.state == "open"


def test_failure_rate_at_the_threshold_opens_it() -> None:
    """Two failures in four calls (50 %) open the breaker, with its metrics and log event."""
    b = breaker(Clock())
    with capture_logs() as logs:
        call(b)
        call(b)
        call(b, failed=True)
        assert b.state == "closed"
        call(b, failed=True)
    assert b.state == "open"
    assert [e["event"] for e in logs] == ["breaker.opened"]
    assert logs[0]["failure_rate"] == 0.5
    down = b.downstream
    assert sample("obslab_breaker_state", downstream=down, state="open") == 1
    assert sample("obslab_breaker_state", downstream=down, state="closed") == 0
    assert sample("obslab_breaker_failure_rate", downstream=down) == 0.5
    assert sample("obslab_breaker_calls_total", downstream=down, outcome="failed") == 2
    assert sample("obslab_breaker_calls_total", downstream=down, outcome="successful") == 2
    transition = {"downstream": down, "from_state": "closed", "to_state": "open"}
    assert sample("obslab_breaker_transitions_total", **transition) == 1


def test_the_count_window_forgets_the_oldest_calls() -> None:
    """In a window of the last four calls, failures pushed out by successes no longer count."""
    b = breaker(Clock(), window_size=4, failure_rate=0.75)
    for failed in (True, True, False, False, False, False, True, True):
        call(b, failed=failed)
    assert b.state == "closed"  # never 3 failures among the last 4 calls


def test_the_time_window_forgets_calls_older_than_its_seconds() -> None:
    """In a ten-second window, failures of twenty seconds ago do not count."""
    clock = Clock()
    b = breaker(clock, window_type="time", window_size=10)
    for _ in range(3):
        call(b, failed=True)
    clock.now += 20
    for _ in range(3):
        call(b)
    call(b, failed=True)
    assert b.state == "closed"  # 1 failure in the 4 calls of the last ten seconds
    for _ in range(2):
        call(b, failed=True)
    assert b.state == "open"  # 3 failures in 6 calls


def test_slow_calls_open_it_even_when_they_succeed() -> None:
    """Successful calls slower than slow_call_s open the breaker by the slow-call rate."""
    b = breaker(Clock(), slow_call_s=1.0, slow_call_rate=0.5)
    call(b)
    call(b)
    call(b, duration_s=1.5)
    call(b, duration_s=2.0)
    assert b.state == "open"
    assert sample("obslab_breaker_slow_call_rate", downstream=b.downstream) == 0.5
    slow = sample("obslab_breaker_calls_total", downstream=b.downstream, outcome="slow_successful")
    assert slow == 2


def open_breaker(clock: Clock, **config: Any) -> CircuitBreaker:
    """A breaker opened by four failures."""
    b = breaker(clock, **config)
    for _ in range(4):
        call(b, failed=True)
    assert b.state == "open"
    return b


def test_open_rejects_calls_until_the_wait_is_over() -> None:
    """Open refuses calls (not_permitted, with Retry-After); after the wait, one passes."""
    clock = Clock()
    b = open_breaker(clock)
    clock.now += 4
    with pytest.raises(CircuitOpen) as refused:
        b.permit()
    assert refused.value.status_code == 503
    assert refused.value.code == "circuit_open"
    assert refused.value.headers == {"Retry-After": "1"}
    assert sample("obslab_breaker_calls_total", downstream=b.downstream, outcome="not_permitted")
    clock.now += 1
    with capture_logs() as logs:
        b.permit()
    assert b.state == "half_open"
    assert [e["event"] for e in logs] == ["breaker.half_opened"]


def test_half_open_permits_only_its_trial_calls() -> None:
    """Half-open lets half_open_calls trials through and refuses the next one."""
    clock = Clock()
    b = open_breaker(clock, half_open_calls=2)
    clock.now += 5
    b.permit()
    b.permit()
    with pytest.raises(CircuitOpen):
        b.permit()
    assert b.state == "half_open"


def test_trials_that_succeed_close_it() -> None:
    """When every trial call has succeeded, the breaker closes with a fresh window."""
    clock = Clock()
    b = open_breaker(clock, half_open_calls=2)
    clock.now += 5
    first, second = b.permit(), b.permit()
    b.record(first, False, 0.01)
    assert b.state == "half_open"  # judged once all trials have ended
    with capture_logs() as logs:
        b.record(second, False, 0.01)
    assert b.state == "closed"
    assert [e["event"] for e in logs] == ["breaker.closed"]
    call(b, failed=True)
    assert b.state == "closed"  # the failures that opened it are forgotten


def test_trials_that_fail_open_it_again() -> None:
    """When the trials fail at the threshold rate, the breaker opens again and waits anew."""
    clock = Clock()
    b = open_breaker(clock, half_open_calls=2)
    clock.now += 5
    first, second = b.permit(), b.permit()
    b.record(first, True, 0.01)
    b.record(second, False, 0.01)
    assert b.state == "open"
    with pytest.raises(CircuitOpen):
        b.permit()
    transition = {"downstream": b.downstream, "from_state": "half_open", "to_state": "open"}
    assert sample("obslab_breaker_transitions_total", **transition) == 1


def test_a_cancelled_trial_gives_its_permit_back() -> None:
    """A trial call released without an outcome lets another trial take its place."""
    clock = Clock()
    b = open_breaker(clock, half_open_calls=1)
    clock.now += 5
    b.release(b.permit())
    call(b)
    assert b.state == "closed"


def test_a_call_from_an_earlier_state_does_not_judge_the_trials() -> None:
    """A slow call let through while closed, ending during half-open, is counted but not a trial."""
    clock = Clock()
    b = breaker(clock, half_open_calls=1)
    straggler = b.permit()
    for _ in range(4):
        call(b, failed=True)
    clock.now += 5
    trial = b.permit()
    b.record(straggler, True, 9.0)
    assert b.state == "half_open"
    b.record(trial, False, 0.01)
    assert b.state == "closed"
