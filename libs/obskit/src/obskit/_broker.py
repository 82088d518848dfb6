"""The RabbitMQ connection of a service, traced across the hop.

The OpenTelemetry aio-pika instrumentation writes the W3C trace context into
each message's headers on publish and continues it on consume, so an order and
its notification are one trace. The connection is *robust*: it reconnects by
itself after the broker restarts.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor

from obskit import _telemetry
from obskit._settings import BrokerSettings

#: The topic exchange every service publishes its events to, the event type as
#: routing key, and where a consumer's queue sends what it rejects.
EXCHANGE = "obslab.events"
DEAD_LETTER_EXCHANGE = "obslab.events.dlx"


async def connect_broker(settings: BrokerSettings) -> AbstractRobustConnection:
    """Connect to RabbitMQ (retrying until it answers is the caller's choice)."""
    instrumentor = AioPikaInstrumentor()
    # Once per process: reconnects skip it.
    if _telemetry.enabled and not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return await aio_pika.connect_robust(settings.amqp_url, timeout=5)


async def declare_exchanges(
    channel: aio_pika.abc.AbstractChannel,
) -> tuple[aio_pika.abc.AbstractExchange, aio_pika.abc.AbstractExchange]:
    """Declare the events exchange and its dead-letter exchange (idempotent)."""
    events = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    return events, dead
