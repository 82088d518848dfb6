"""The simulated bank: where payments calls the bank to authorize a charge.

It behaves like a remote dependency: every call takes a log-normal time (most
calls near the median, a long tail of slow ones, as real latencies are) and fails
with :class:`BankUnavailable` at the configured rate. The card ``4000000000000002``
is always declined; any other valid card is approved. An answer slower than
``bank_timeout_s`` is none: nothing is charged (the bank voids what it does not
answer in time), so a charge that started ends within that time.

The call has its own span, ``bank.authorize``, so a trace shows how much of a
payment was spent waiting for the bank. Its attributes are the amount and the
card brand, never the number.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Literal

from opentelemetry import trace
from prometheus_client import Histogram

from contracts import PaymentCard
from obskit import HTTP_BUCKETS, observe_with_exemplar
from payments.settings import Settings

BANK_DURATION = Histogram(
    "obslab_bank_request_duration_seconds",
    "Time the bank took to answer an authorization, by outcome: approved, declined or error.",
    ["outcome"],
    buckets=HTTP_BUCKETS,
)

DECLINED_CARD = "4000000000000002"

tracer = trace.get_tracer("payments.bank")

Answer = Literal["approved", "declined"]


class BankUnavailable(Exception):
    """The bank did not answer; nothing was charged, so the charge may be retried."""


class SimulatedBank:
    """Authorizes charges, slowly and sometimes not at all, as configured.

    Its attributes may be changed on a running app (``app.state.bank``), as tests do.
    """

    def __init__(self, settings: Settings) -> None:
        self.latency_ms = settings.bank_latency_ms
        self.jitter = settings.bank_latency_jitter
        self.failure_rate = settings.bank_failure_rate
        self.timeout_s = settings.bank_timeout_s
        self.random = random.Random(settings.random_seed)

    def _latency_s(self) -> float:
        if self.latency_ms <= 0:
            return 0.0
        # The median of lognormvariate(mu, sigma) is e**mu, so mu = ln(median).
        return self.random.lognormvariate(math.log(self.latency_ms / 1000), self.jitter)

    async def authorize(self, card: PaymentCard, amount_cents: int) -> Answer:
        """Ask the bank to approve ``amount_cents`` on ``card``; raises BankUnavailable."""
        start = time.perf_counter()
        outcome = "error"
        attributes = {"payment.amount_cents": amount_cents, "payment.card.brand": card.brand}
        with tracer.start_as_current_span(
            "bank.authorize", kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                latency_s = self._latency_s()
                if latency_s > self.timeout_s:
                    await asyncio.sleep(self.timeout_s)
                    raise BankUnavailable("The bank did not answer in time.")
                await asyncio.sleep(latency_s)
                if self.random.random() < self.failure_rate:
                    raise BankUnavailable("The bank did not answer.")
                declined = card.number.get_secret_value() == DECLINED_CARD
                answer: Answer = "declined" if declined else "approved"
                outcome = answer
                span.set_attribute("payment.bank.answer", answer)
                return answer
            finally:
                observe_with_exemplar(BANK_DURATION, time.perf_counter() - start, outcome)
