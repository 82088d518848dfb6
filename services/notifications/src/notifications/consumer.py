"""The consumer of order events: one email per event, exactly once, then orders is told.

For each message on the queue ``notifications.order-events``:

1. parse it as an :data:`contracts.AnyOrderEvent`; a message that is not one can never
   succeed, so it goes straight to the dead-letter queue;
2. claim the event in the database and send the email in one transaction (insert,
   send, commit): a failed send rolls the claim back, so a retry sends, and another
   delivery of the same event finds the row and does not send again;
3. ``POST /orders/{id}/notified`` at orders (idempotent there);
4. ack.

Steps 2 and 3 are retried together, with exponential backoff and jitter, on
transient errors (orders or the database unreachable or failing); when the tries run
out, or when orders says the order does not exist, the message is rejected to the
dead-letter exchange and lands in ``notifications.order-events.dlq``.

The broker connection is robust: it is opened in the background with retries (the
app starts and reports not-ready while the broker is down), and after a broker
restart aio-pika declares the queues again and resumes the consumer by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import stamina
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from prometheus_client import Counter, Histogram
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import contracts
import obskit
from notifications.sender import send_email
from notifications.settings import Settings
from notifications.store import Notification, NotificationStore

log = structlog.get_logger("notifications.consumer")

EVENTS_CONSUMED = Counter(
    "obslab_events_consumed_total",
    "Order events handled, by final outcome: sent, duplicate (sent before, not sent again), "
    "skipped (no email address) or dead_lettered.",
    ["event_type", "outcome"],
)
EVENTS_RETRIED = Counter(
    "obslab_events_retried_total",
    "Tries of an order event after a transient error (stamina_retries_total has the error).",
    ["event_type"],
)
EVENTS_DEAD_LETTERED = Counter(
    "obslab_events_dead_lettered_total",
    "Order events rejected to the dead-letter queue, by why: invalid, order_not_found, "
    "rejected (another 4xx from orders), retries_exhausted or error (a bug).",
    ["event_type", "reason"],
)
HANDLE_DURATION = Histogram(
    "obslab_notification_handle_duration_seconds",
    "Time from a message's delivery to its ack or reject, retries included.",
    ["event_type", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

EVENT = TypeAdapter[contracts.OrderPlaced | contracts.OrderFailed](contracts.AnyOrderEvent)

#: Errors worth another try: they say "not now", not "never".
TRANSIENT_ERRORS = (
    obskit.DownstreamError,  # orders failed (5xx), was unreachable or too slow
    sa_exc.OperationalError,  # the database dropped the connection or is restarting
    sa_exc.TimeoutError,  # no free connection in the pool in time
    OSError,  # the database could not be reached at all
)
#: Errors of connecting to the broker, retried until it answers.
BROKER_ERRORS = (OSError, AMQPError)


class Undeliverable(Exception):
    """This event can never be handled: dead-letter it now, without retrying."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotConsuming(Exception):
    """The readiness check's failure: the worker is not connected to the broker."""


class EventConsumer:
    """Consumes order events from :meth:`start` to :meth:`stop`; :meth:`check` is its readiness."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        orders: obskit.ServiceClient,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.orders = orders
        #: Messages being handled right now; shutdown waits for them.
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._connecting: asyncio.Task[None] | None = None

    # Life cycle.

    def start(self) -> None:
        """Connect and consume in the background, so the app starts even without a broker."""
        self._connecting = asyncio.create_task(self._connect(), name="notifications.connect")

    async def _connect(self) -> None:
        async for attempt in stamina.retry_context(
            on=BROKER_ERRORS, attempts=None, timeout=None, wait_initial=0.5, wait_max=5.0
        ):
            with attempt:
                await self._consume()
        log.info("consumer.started", queue=self.settings.queue, prefetch=self.settings.prefetch)

    async def _consume(self) -> None:
        connection = await obskit.connect_broker(self.settings)
        try:
            # Everything is declared on the robust channel, which remembers it: after a
            # reconnect it declares the queues and bindings again and resumes consuming.
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.settings.prefetch)
            events, dead_letters = await obskit.declare_exchanges(channel)
            queue = await channel.declare_queue(
                self.settings.queue,
                durable=True,
                arguments={"x-dead-letter-exchange": obskit.DEAD_LETTER_EXCHANGE},
            )
            await queue.bind(events, "order.*")
            dead_letter_queue = await channel.declare_queue(
                f"{self.settings.queue}.dlq", durable=True
            )
            await dead_letter_queue.bind(dead_letters, "#")
            # The OpenTelemetry instrumentation wraps this callback: each message is
            # handled inside a consumer span that continues the publisher's trace.
            self._consumer_tag = await queue.consume(self._on_message)
        except BaseException:
            await connection.close()
            raise
        connection.close_callbacks.add(self._on_disconnected)
        connection.reconnect_callbacks.add(self._on_reconnected)
        self._connection, self._queue = connection, queue

    def _on_disconnected(self, _: Any, error: BaseException | None) -> None:
        if self._consumer_tag is not None:  # None once stop() began: no surprise then
            log.warning("broker.disconnected", error=type(error).__name__ if error else None)

    def _on_reconnected(self, _: Any) -> None:
        log.info("broker.reconnected", queue=self.settings.queue)

    async def stop(self) -> None:
        """Stop consuming, let the messages in hand finish (bounded), then disconnect."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        tag, self._consumer_tag = self._consumer_tag, None
        if self._queue is not None and tag is not None:
            with contextlib.suppress(AMQPError, OSError):  # a lost connection has no consumer
                await self._queue.cancel(tag, timeout=5)
        try:
            async with asyncio.timeout(self.settings.shutdown_timeout_s):
                await self._idle.wait()
        except TimeoutError:
            # Closing cancels them; unacked, the broker delivers them again later.
            log.warning("consumer.shutdown_timeout", in_flight=self.in_flight)
        if self._connection is not None:
            await self._connection.close()
        log.info("consumer.stopped")

    async def check(self) -> None:
        """Readiness: connected to the broker with the consumer running."""
        connection = self._connection
        if connection is None or self._consumer_tag is None or not connection.connected.is_set():
            raise NotConsuming

    # One message.

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        start = time.perf_counter()
        self.in_flight += 1
        self._idle.clear()
        try:
            event_type, outcome = await self._handle(message)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        EVENTS_CONSUMED.labels(event_type, outcome).inc()
        obskit.observe_with_exemplar(
            HANDLE_DURATION, time.perf_counter() - start, event_type, outcome
        )

    async def _handle(self, message: AbstractIncomingMessage) -> tuple[str, str]:
        """Handle one message to its ack or reject; its event type and outcome."""
        # A slow or crashing worker, when the lab injects one (obslab chaos): the
        # messages wait in the queue, unacked ones come back after a crash.
        await obskit.worker_faults(self.settings.service_name, message.routing_key)
        try:
            event = EVENT.validate_json(message.body)
        except ValidationError as exc:
            # The errors are not logged: they echo the input, which may hold an email.
            await dead_letter(message, "unknown", "invalid", error_count=exc.error_count())
            return "unknown", "dead_lettered"

        with structlog.contextvars.bound_contextvars(
            event_id=str(event.event_id), order_id=str(event.order_id), event_type=event.type
        ):
            try:
                outcome = await self._deliver(event)
            except Undeliverable as exc:
                await dead_letter(message, event.type, exc.reason)
            except TRANSIENT_ERRORS as exc:
                error = type(exc).__name__
                await dead_letter(message, event.type, "retries_exhausted", error=error)
            except Exception as exc:  # a bug: park the message rather than block the queue
                log.exception("event.handling_failed")
                await dead_letter(message, event.type, "error", error=type(exc).__name__)
            else:
                await settle(message.ack())
                return event.type, outcome
        return event.type, "dead_lettered"

    async def _deliver(self, event: contracts.OrderPlaced | contracts.OrderFailed) -> str:
        """Send the notification (once) and mark the order notified, retrying; the outcome."""
        sent = False
        async for attempt in stamina.retry_context(
            on=TRANSIENT_ERRORS,
            attempts=self.settings.max_attempts,
            timeout=None,  # the attempts bound it
            wait_initial=self.settings.retry_initial_delay_s,
            wait_max=self.settings.retry_max_delay_s,
            wait_jitter=self.settings.retry_initial_delay_s,
        ):
            with attempt:
                if attempt.num > 1:
                    EVENTS_RETRIED.labels(event.type).inc()
                # A try after a failed mark finds the row: it was sent on this delivery.
                sent = await self._send_once(event) or sent
                await self._mark_notified(event.order_id)
        if not event.email:
            return "skipped"
        return "sent" if sent else "duplicate"

    async def _send_once(self, event: contracts.OrderPlaced | contracts.OrderFailed) -> bool:
        """Send the email unless this event's was sent before; whether it was sent now."""
        if not event.email:
            return False  # nobody to write to; orders is still told we are done
        async with self.sessions() as session:
            claimed = await NotificationStore(session).claim(
                Notification(
                    event_id=event.event_id,
                    order_id=event.order_id,
                    event_type=event.type,
                    channel="email",
                    recipient=event.email,
                )
            )
            if not claimed:
                return False
            # If sending raises, leaving the block rolls the claim back: a retry sends.
            await send_email(event.email, event, self.settings.send_latency_ms / 1000)
            # Were the commit to fail now, the email is out but a retry sends it again:
            # the one window where "exactly once" becomes "at least once".
            await session.commit()
        return True

    async def _mark_notified(self, order_id: uuid.UUID) -> None:
        response = await self.orders.request("POST", f"/orders/{order_id}/notified")
        if response.status_code == 404:
            raise Undeliverable("order_not_found")
        if response.is_error:  # another 4xx: asking again gets the same answer
            raise Undeliverable("rejected")


async def dead_letter(
    message: AbstractIncomingMessage, event_type: str, reason: str, **fields: Any
) -> None:
    """Reject without requeueing: the queue's dead-letter exchange routes it to the DLQ."""
    EVENTS_DEAD_LETTERED.labels(event_type, reason).inc()
    log.error("event.dead_lettered", reason=reason, **fields)
    await settle(message.reject(requeue=False))


async def settle(action: Awaitable[object]) -> None:
    """Ack or reject; if the channel died meanwhile, the broker redelivers, and that is fine."""
    try:
        await action
    except (AMQPError, ChannelInvalidStateError) as exc:
        log.warning("event.settle_failed", error=type(exc).__name__)
