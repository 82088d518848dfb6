"""The checkout's recovery: runs what a checkout still owes until it is done, so every
order ends ``confirmed`` or ``failed`` and no money or stock is kept for a failed one.

The checkout stores each debt in the transaction of its state change (a
:class:`~orders.store.CheckoutJob` row): a pending order with a job to *resolve* it,
a failed order with a job to *compensate* it. A background task of the orders
service, started by its lifespan, takes the jobs that are due (leased, with ``FOR
UPDATE SKIP LOCKED``, so replicas share them) and

- **resolves** a pending order whose checkout never ended (its process died, or its
  answer was lost): it asks inventory (``GET /reservations/{id}``) and payments
  (``GET /charges/{id}``) what they did. Stock reserved and the card charged (or
  nothing to charge): the order is confirmed, with its ``OrderPlaced``. Anything
  else: it is failed (``checkout_interrupted``) and gets a compensate job;
- **compensates** a failed order: refunds a charge that succeeded and releases a
  reservation, both idempotent, so running one twice is harmless.

A job is done only when it runs after its ``settles_at``, the order's creation plus
``recovery_settle_s``: longer than any request of the checkout may still be under
way. Inventory and payments refuse to start work once the caller's deadline has
passed (``OBSLAB_REQUEST_BUDGET_S``, below the settle time: the settings check), and
a charge that started ends within payments' ``bank_timeout_s``. Before then a
reservation or a charge may still land after the job looked, so a compensation that
ran early runs once more at ``settles_at``. A peer that refuses or is down is asked
again later, with capped exponential backoff and full jitter, for as long as it
takes: a job is never dropped.

Orders owns these decisions, not inventory: only orders knows whether a reservation
belongs to an order that was confirmed, so inventory never expires one by itself.

Why not a library: the job must be written in the same transaction as the order's
state change, on the service's own SQLAlchemy session (asyncpg). The PostgreSQL job
queues and workflow engines for Python (procrastinate, DBOS) write their jobs through
their own connections (psycopg), outside that transaction, so a crash between the
two would lose the debt; the outbox beside this module already uses the pattern.

Every resolution and compensation is a span (``orders.recover``) linked to the
checkout's trace, with an event for each thing it did, and is counted:
``obslab_checkout_jobs{kind}`` and ``obslab_checkout_job_age_seconds{kind}`` (open jobs
and the oldest one's age: the alert ``CheckoutUnresolved``),
``obslab_orders_recovered_total{outcome}``, ``obslab_compensations_total{step}`` and
``obslab_checkout_job_retries_total{kind}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from obskit import DownstreamError, DownstreamUnavailable, ServiceClient, ServiceError
from orders.settings import Settings
from orders.store import CheckoutJob, OrderStore

log = structlog.get_logger("orders.recovery")
tracer = trace.get_tracer("orders.recovery")

CHECKOUT_JOBS = Gauge(
    "obslab_checkout_jobs", "Checkout jobs not done yet: resolve or compensate.", ["kind"]
)
CHECKOUT_JOB_AGE = Gauge(
    "obslab_checkout_job_age_seconds", "Age of the oldest checkout job not done yet.", ["kind"]
)
ORDERS_RECOVERED = Counter(
    "obslab_orders_recovered",
    "Pending orders the recovery ended, by outcome: confirmed or failed.",
    ["outcome"],
)
COMPENSATIONS = Counter(
    "obslab_compensations",
    "What the compensation of failed orders gave back: refund or release.",
    ["step"],
)
JOB_RETRIES = Counter(
    "obslab_checkout_job_retries",
    "Checkout jobs that could not finish this time (a peer refused or was down).",
    ["kind"],
)
KINDS = ("resolve", "compensate")
#: The span event of each compensation step.
GAVE_BACK = {"refund": "charge.refunded", "release": "stock.released"}
#: How long a job a runner took stays its own; after that another runner may take it.
LEASE_S = 30.0


class Interrupted(DownstreamUnavailable):
    """The answer stored for an order the recovery failed: its checkout never finished."""

    code = "checkout_interrupted"


class PeerUnavailable(Exception):
    """A peer could not tell or do what the job needs; the job is retried later."""


def _now() -> datetime:
    return datetime.now(UTC)


class Recovery:
    """The orders service's recovery loop, and each job's work."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        inventory: ServiceClient,
        payments: ServiceClient,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.inventory, self.payments = inventory, payments
        self.settings = settings
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Run due jobs every ``recovery_interval_s`` until stopped; a pass that fails
        (the database is down) is logged and the next one tries again."""
        while not self._stopping.is_set():
            try:
                await self.run_due()
            except Exception as exc:  # the loop must outlive any one pass
                log.warning("recovery.pass_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.recovery_interval_s)

    async def run_due(self) -> int:
        """One pass: every job due now, then the gauges; how many jobs ran."""
        async with self.sessions() as session:
            jobs = await OrderStore(session).claim_jobs(limit=20, lease_s=LEASE_S)
        for job in jobs:
            await self.run_job(job)
        await self.measure()
        return len(jobs)

    async def measure(self) -> None:
        async with self.sessions() as session:
            open_jobs = await OrderStore(session).open_jobs()
        now = _now()
        for kind in KINDS:
            count, oldest = open_jobs.get(kind, (0, None))
            CHECKOUT_JOBS.labels(kind).set(count)
            age = (now - _aware(oldest)).total_seconds() if oldest is not None else 0.0
            CHECKOUT_JOB_AGE.labels(kind).set(age)

    async def run_job(self, job: CheckoutJob) -> None:
        """Do one job: done, or rescheduled with backoff (never lost)."""
        links = _links(job.traceparent)
        with tracer.start_as_current_span(
            "orders.recover", links=links, attributes={"order.id": str(job.order_id)}
        ) as span:
            span.set_attribute("orders.recovery.kind", job.kind)
            span.set_attribute("orders.recovery.attempt", job.attempts)
            try:
                if job.kind == "resolve":
                    await self.resolve(job.order_id, _aware(job.settles_at))
                else:
                    await self.compensate(job.order_id)
            except PeerUnavailable as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                JOB_RETRIES.labels(job.kind).inc()
                due = _now() + timedelta(seconds=self.backoff(job.attempts))
                log.warning("recovery.retry", kind=job.kind, attempt=job.attempts, error=str(exc))
                async with self.sessions() as session:
                    await OrderStore(session).retry_job(job.order_id, job.kind, due, str(exc))
                return
            settles_at = _aware(job.settles_at)
            async with self.sessions() as session:
                store = OrderStore(session)
                if job.kind == "compensate" and _now() < settles_at:
                    # Done for now; once more when nothing can still land.
                    await store.retry_job(job.order_id, job.kind, settles_at, None)
                else:
                    await store.finish_job(job.order_id, job.kind)

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to a doubling ceiling, capped."""
        ceiling = min(self.settings.recovery_backoff_max_s, 0.5 * 2 ** max(0, attempt - 1))
        return random.uniform(0, ceiling)

    async def resolve(self, order_id: uuid.UUID, settles_at: datetime) -> None:
        """End a pending order by what its peers did; nothing when it has ended."""
        async with self.sessions() as session:
            store = OrderStore(session)
            order = await store.get(order_id)
            if order is None or order.status != "pending":
                return
            if _now() < settles_at:  # leased early by a clock skew: not yet
                raise PeerUnavailable("the checkout may still be running")
            reserved = await self._reservation(order_id) == "reserved"
            charged = order.total_cents == 0 or await self._charge(order_id) == "succeeded"
            span = trace.get_current_span()
            if reserved and charged:
                if await store.confirm(order) is not None:
                    ORDERS_RECOVERED.labels("confirmed").inc()
                    span.add_event("order.confirmed")
                    log.info("order.recovered", outcome="confirmed", order_id=str(order_id))
                return
            error = Interrupted("The checkout was interrupted; nothing was kept for this order.")
            if await store.fail(order, "checkout_interrupted", error, _now(), due_now=True):
                ORDERS_RECOVERED.labels("failed").inc()
                span.add_event("order.failed", {"reserved": reserved, "charged": charged})
                log.info("order.recovered", outcome="failed", order_id=str(order_id))
        # The compensate job it stored is due now: the next pass runs it.

    async def compensate(
        self, order_id: uuid.UUID, refund: bool = True, release: bool = True
    ) -> None:
        """Refund the order's charge if it succeeded, release its stock if reserved; each
        step is tried whatever the other's peer says (:class:`PeerUnavailable` after).
        ``refund`` or ``release`` False: the caller knows there is nothing to look up."""
        problems = []
        steps = [s for s, wanted in ((self._refund, refund), (self._release, release)) if wanted]
        for step in steps:
            try:
                await step(order_id)
            except PeerUnavailable as exc:
                problems.append(str(exc))
        if problems:
            raise PeerUnavailable("; ".join(problems))

    async def _refund(self, order_id: uuid.UUID) -> None:
        if await self._charge(order_id) == "succeeded":
            await self._call(self.payments, f"/charges/{order_id}/refund", {200, 404, 409})
            self._gave_back("refund", order_id)

    async def _release(self, order_id: uuid.UUID) -> None:
        if await self._reservation(order_id) == "reserved":
            await self._call(self.inventory, f"/reservations/{order_id}/release", {200, 404})
            self._gave_back("release", order_id)

    @staticmethod
    def _gave_back(step: str, order_id: uuid.UUID) -> None:
        COMPENSATIONS.labels(step).inc()
        trace.get_current_span().add_event(GAVE_BACK[step])
        log.info("order.compensated", step=step, order_id=str(order_id))

    async def compensate_now(self, order_id: uuid.UUID, refund: bool, release: bool) -> None:
        """Give back at once what a checkout that just failed may hold, so its stock
        returns before the client is answered. Its job runs at ``settles_at`` to make
        sure; sooner, with backoff, if a peer refuses now."""
        try:
            await self.compensate(order_id, refund, release)
        except PeerUnavailable as exc:
            log.warning("order.compensation_deferred", error=str(exc))
            due = _now() + timedelta(seconds=self.backoff(1))
            async with self.sessions() as session:
                await OrderStore(session).retry_job(order_id, "compensate", due, str(exc))

    async def _charge(self, order_id: uuid.UUID) -> str | None:
        """The order's charge status at payments; None when it has no charge."""
        body = await self._read(self.payments, f"/charges/{order_id}")
        return None if body is None else str(body["status"])

    async def _reservation(self, order_id: uuid.UUID) -> str | None:
        body = await self._read(self.inventory, f"/reservations/{order_id}")
        return None if body is None else str(body["status"])

    async def _read(self, peer: ServiceClient, path: str) -> dict[str, Any] | None:
        try:
            response = await peer.request("GET", path, within_deadline=False)
        except (DownstreamError, ServiceError) as exc:
            raise PeerUnavailable(f"{peer.peer_service}: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PeerUnavailable(f"{peer.peer_service} answered {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def _call(self, peer: ServiceClient, path: str, accepted: set[int]) -> None:
        try:
            response = await peer.request("POST", path, idempotent=True, within_deadline=False)
        except (DownstreamError, ServiceError) as exc:
            raise PeerUnavailable(f"{peer.peer_service}: {type(exc).__name__}") from exc
        if response.status_code not in accepted:
            raise PeerUnavailable(f"{peer.peer_service} answered {response.status_code}")


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _links(traceparent: str | None) -> list[Link]:
    """A link to the checkout's span, when the job kept its trace context."""
    if not traceparent:
        return []
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return [Link(span_context)] if span_context.is_valid else []
