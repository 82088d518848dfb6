"""Fallbacks: an answer that is worse than usual but better than an error, said so.

Where the product can degrade (products read from a last-known-good copy while
catalog is down), the call site catches the dependency's failure and answers from
its fallback. It is never silent: the answer carries ``X-Degraded: <reason>`` (and
a field of the body where the schema has one), and :func:`fallback_served`
counts it in ``obslab_fallbacks_total{call_site}``, logs ``fallback.served`` and
marks the current span, so a dashboard shows how much of the traffic is degraded.
"""

from __future__ import annotations

import structlog
from opentelemetry import trace
from prometheus_client import Counter

log = structlog.get_logger("obskit.fallback")

#: The response header that says an answer came from a fallback, and why.
DEGRADED_HEADER = "X-Degraded"

FALLBACKS = Counter(
    "obslab_fallbacks",
    "Answers served by a fallback instead of the dependency, by call site.",
    ["call_site"],
)


def fallback_served(call_site: str, reason: str, error: Exception | None = None) -> None:
    """Count and record that ``call_site`` answered from its fallback, for ``reason``."""
    FALLBACKS.labels(call_site).inc()
    fields = {"call_site": call_site, "reason": reason, "error": type(error).__name__}
    log.warning("fallback.served", **fields)
    trace.get_current_span().add_event("fallback.served", fields)
