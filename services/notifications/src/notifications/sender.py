"""The simulated email provider: where a real worker would call SES or SMTP.

Sending takes ``send_latency_ms`` inside a span of its own, ``notification.send``,
so a trace shows how long the provider took. The log line names the recipient
masked: an email address is personal data and logs are kept and shared widely.
"""

from __future__ import annotations

import asyncio

import structlog
from opentelemetry import trace

import contracts

log = structlog.get_logger("notifications.sender")
tracer = trace.get_tracer("notifications.sender")


def mask_email(address: str) -> str:
    """Hide all but the first letter of the local part: ``a***@example.com``."""
    local, at, domain = address.partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


async def send_email(
    recipient: str, event: contracts.OrderPlaced | contracts.OrderFailed, latency_s: float
) -> None:
    """Send the email about ``event`` (simulated: wait ``latency_s``, then log it)."""
    with tracer.start_as_current_span(
        "notification.send",
        kind=trace.SpanKind.CLIENT,
        attributes={"notification.channel": "email", "notification.event_type": event.type},
    ):
        await asyncio.sleep(latency_s)
        log.info(
            "notification.sent",
            order_id=str(event.order_id),
            event_type=event.type,
            channel="email",
            recipient=mask_email(recipient),
        )
