"""Retries of a failed call: bounded, spread out, and only when repeating is safe.

The loop is stamina's (``stamina.retry_context``); what this module decides is
*whether* and *when* to try again:

* only a call that is safe to repeat: an idempotent method (GET, HEAD, OPTIONS,
  PUT, DELETE) or a request carrying an ``Idempotency-Key`` (the caller may also
  say so, for an endpoint idempotent by design, such as a charge by order id);
* only after a failure that may pass (no connection, a timeout, a 502/503/504),
  never after a refusal of our own: an open breaker, a full bulkhead, or a spent
  deadline mean "do not call now", and retrying would defeat them;
* at most ``attempts`` tries in all, and none that would start after the
  request's deadline;
* only while the downstream's **retry budget** allows (gRPC's retry throttling):
  each failure costs a token, each success earns back ``ratio`` of one, and
  retries stop while fewer than half the tokens are left. When a dependency is
  down, retries dry up instead of multiplying its load by ``attempts``.

The wait before retry *n* is "full jitter" (AWS Architecture Blog, "Exponential
Backoff and Jitter"): uniform in [0, min(wait_max, wait_initial * 2^(n-1))], so that
callers that failed together do not come back together. We hand it to stamina as
a backoff hook's answer.

Tests call :func:`set_retry_testing` (an autouse fixture does), and every wait is 0.

Each retry counts in ``obslab_retry_attempts_total{downstream,attempt}`` (attempt
"1" is the first retry), writes the log event ``retry.scheduled`` and adds an
event to the current span.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import stamina
import structlog
from opentelemetry import trace
from prometheus_client import Counter

from obskit import _deadline

log = structlog.get_logger("obskit.retry")

T = TypeVar("T")

RETRY_ATTEMPTS = Counter(
    "obslab_retry_attempts",
    'Retries of calls to a downstream, by retry number ("1" is the first retry).',
    ["downstream", "attempt"],
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_testing = False


def set_retry_testing(testing: bool) -> None:
    """In tests, retry without waiting (the attempts and the budget still apply)."""
    global _testing
    _testing = testing


def is_testing() -> bool:
    return _testing


def is_idempotent(method: str, headers: Mapping[str, str] | None) -> bool:
    """Whether a request may be sent twice: by its method, or by its idempotency key."""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return any(name.lower() == "idempotency-key" for name in headers or {})


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries a call gets, and how long the waits between them may grow."""

    attempts: int = 3
    wait_initial_s: float = 0.05
    wait_max_s: float = 1.0


class RetryBudget:
    """gRPC's retry throttling for one downstream: retries stop while it keeps failing."""

    def __init__(self, tokens: int, ratio: float) -> None:
        self.max_tokens, self.ratio = float(tokens), ratio
        self.tokens = self.max_tokens

    def succeeded(self) -> None:
        self.tokens = min(self.max_tokens, self.tokens + self.ratio)

    def failed(self) -> None:
        self.tokens = max(0.0, self.tokens - 1)

    def allows_retry(self) -> bool:
        return self.tokens > self.max_tokens / 2


async def call_with_retries(
    downstream: str,
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    budget: RetryBudget,
    retryable: Callable[[Exception], bool],
) -> T:
    """Await ``call()`` until it succeeds or no retry is allowed; raise its last error."""
    tries = 0

    def backoff(exc: Exception) -> float | bool:
        """stamina asks after each failure: no retry (False), or the wait before one."""
        if not retryable(exc):
            return False
        budget.failed()
        if tries >= policy.attempts or not budget.allows_retry():
            return False
        cap = min(policy.wait_max_s, policy.wait_initial_s * 2 ** (tries - 1))
        wait = 0.0 if _testing else random.uniform(0, cap)
        left = _deadline.remaining()
        if left is not None and left <= wait:
            return False  # the retry would start after the caller has given up
        RETRY_ATTEMPTS.labels(downstream, str(tries)).inc()
        fields: dict[str, str | float] = {
            "downstream": downstream,
            "attempt": tries,
            "wait_s": round(wait, 3),
            "error": type(exc).__name__,
        }
        log.info("retry.scheduled", **fields)
        trace.get_current_span().add_event("retry.scheduled", fields)
        return wait

    # stamina's own limits are only a backstop: ``backoff`` decides, so what it
    # counts and logs is exactly what happens.
    async for attempt in stamina.retry_context(on=backoff, attempts=policy.attempts, timeout=None):
        with attempt:
            tries += 1
            result = await call()
            budget.succeeded()
            return result
    raise AssertionError("unreachable: stamina re-raises the last error")
