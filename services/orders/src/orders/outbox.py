"""The outbox relay: publishes the events the orders' transactions stored.

A background task, started by the lifespan, that every ``outbox_poll_interval_s``

1. counts the unpublished rows (``obslab_outbox_backlog``);
2. takes a batch of them in id order, locked with ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL so that several replicas never publish the same row at once
   (SQLite has no row locks and ignores the clause: it runs a single replica);
3. publishes each one with publisher confirms, as a persistent message, inside a
   span whose parent is the trace of the request that wrote it, so the consumer
   continues the checkout's trace;
4. marks what the broker confirmed as published.

Delivery is *at least once*: a crash between the broker's confirm and the commit
publishes that event again, which is why every event carries an ``event_id`` for
consumers to deduplicate on. The broker may be down at startup or at any moment:
the relay then keeps the events, waits (capped exponential backoff) and tries
again, forever; it never takes order placement down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import obskit
from orders.settings import Settings
from orders.store import OutboxMessage

log = structlog.get_logger("orders.outbox")
tracer = trace.get_tracer("orders.outbox")

OUTBOX_BACKLOG = Gauge(
    "obslab_outbox_backlog", "Events stored in the outbox and not yet published."
)
OUTBOX_PUBLISHED = Counter(
    "obslab_outbox_published_total", "Events the relay published and the broker confirmed."
)

#: A publish (or connect) slower than this counts as the broker being unavailable.
BROKER_TIMEOUT_S = 5.0
#: The longest wait between two attempts while the broker (or database) is down.
MAX_BACKOFF_S = 5.0

_BROKER_ERRORS = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    OSError,  # connection refused or reset
    TimeoutError,
)


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached, or did not confirm a message in time."""


class OutboxRelay:
    """Publishes the outbox to RabbitMQ; :meth:`run` is the background task."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._failing: str | None = None  # the failure being reported, until it ends
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Relay until :meth:`stop`; a failure is logged once, and retried with backoff."""
        failures = 0
        while not self._stopping.is_set():
            try:
                await self.relay_once()
            except BrokerUnavailable as exc:
                failures += 1
                await self._disconnect()
                self._report("outbox.broker_unavailable", exc.__cause__ or exc)
            except Exception as exc:  # the database is down, or a bug: keep going either way
                failures += 1
                self._report("outbox.relay_failed", exc)
            else:
                failures = 0
                if self._failing is not None:
                    log.info("outbox.recovered", after=self._failing)
                    self._failing = None
            with contextlib.suppress(TimeoutError):  # sleep, unless told to stop
                await asyncio.wait_for(self._stopping.wait(), self._delay(failures))

    def stop(self) -> None:
        """Make :meth:`run` return once the pass it is in is over."""
        self._stopping.set()

    def _delay(self, failures: int) -> float:
        """The poll interval, doubled for each failure in a row, up to MAX_BACKOFF_S."""
        interval = self.settings.outbox_poll_interval_s
        return min(interval * 2.0 ** min(failures, 10), max(interval, MAX_BACKOFF_S))

    def _report(self, event: str, exc: BaseException) -> None:
        # Once per outage, not once per attempt: five lines a second say nothing more.
        if self._failing != event:
            self._failing = event
            log.warning(event, error=type(exc).__name__, detail=str(exc))

    async def relay_once(self) -> int:
        """One pass: publish what is waiting (up to a batch); return how many went out."""
        backlog = await self._count_backlog()
        OUTBOX_BACKLOG.set(backlog)
        if not backlog:
            return 0
        exchange = await self._connect()
        published = 0
        async with self.sessions() as session:
            # The relay polls several times a second; tracing every poll would bury
            # the checkout traces under empty ones, so its own queries are not traced.
            with suppress_instrumentation():
                rows = await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.published_at.is_(None))
                    .order_by(OutboxMessage.id)
                    .limit(self.settings.outbox_batch_size)
                    .with_for_update(skip_locked=True)
                )
            try:
                for row in rows.all():
                    await self._publish(exchange, row)
                    row.published_at = datetime.now(UTC)
                    published += 1
            finally:
                # Keep what the broker confirmed, even when it failed halfway through.
                with suppress_instrumentation():
                    await session.commit()
                OUTBOX_PUBLISHED.inc(published)
                OUTBOX_BACKLOG.dec(published)
        return published

    async def _count_backlog(self) -> int:
        async with self.sessions() as session:
            with suppress_instrumentation():
                count = await session.scalar(
                    select(func.count()).where(OutboxMessage.published_at.is_(None))
                )
        return count or 0

    async def _connect(self) -> AbstractExchange:
        """The events exchange, connecting first if there is no connection yet."""
        if self._exchange is None:
            try:
                async with asyncio.timeout(BROKER_TIMEOUT_S):
                    self._connection = await obskit.connect_broker(self.settings)
                    # Publisher confirms are on by default: publish returns once the
                    # broker has the message (on disk, for a persistent one in a
                    # durable queue).
                    channel = await self._connection.channel()
                    self._exchange, _ = await obskit.declare_exchanges(channel)
            except _BROKER_ERRORS as exc:
                raise BrokerUnavailable(str(exc)) from exc
            log.info("outbox.broker_connected")
        return self._exchange

    async def _publish(self, exchange: AbstractExchange, row: OutboxMessage) -> None:
        # Continue the trace of the request that stored the event: the aio-pika
        # instrumentation makes the publish span a child of this one and writes its
        # context into the message headers, where the consumer picks it up.
        parent = propagate.extract({"traceparent": row.traceparent} if row.traceparent else {})
        with tracer.start_as_current_span(
            "outbox.relay",
            context=parent,
            kind=trace.SpanKind.INTERNAL,
            attributes={
                "messaging.message.id": str(row.event_id),
                "obslab.event_type": row.event_type,
            },
        ):
            message = aio_pika.Message(
                body=row.payload.encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(row.event_id),
            )
            try:
                # A robust channel waits for its connection to come back: bound the wait.
                async with asyncio.timeout(BROKER_TIMEOUT_S):
                    result = await exchange.publish(message, routing_key=row.event_type)
            except _BROKER_ERRORS as exc:
                raise BrokerUnavailable(str(exc)) from exc
        if isinstance(result, aiormq.abc.DeliveredMessage):
            # Returned by the broker: no queue is bound for this event type (has
            # notifications ever started?). Nobody could get it; retrying will not help.
            log.warning("outbox.unroutable", event_type=row.event_type, event_id=str(row.event_id))

    async def _disconnect(self) -> None:
        """Forget the connection, so that the next attempt starts a fresh one."""
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it is broken already; closing is courtesy
                async with asyncio.timeout(BROKER_TIMEOUT_S):
                    await connection.close()

    async def close(self) -> None:
        await self._disconnect()
