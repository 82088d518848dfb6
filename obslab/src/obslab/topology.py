"""The shop's services and who calls whom: the one list the native lab, chaos, tokens and
the labs read (the compose file and the dashboards spell their own, checked by tests)."""

from __future__ import annotations

#: The public entry; it runs as two replicas behind nginx in the native lab.
GATEWAY = "gateway"
#: The internal services, in the order the lab starts them (each callee before its callers).
INTERNAL = ("catalog", "inventory", "payments", "orders", "notifications")
SERVICES = (GATEWAY, *INTERNAL)
#: Each caller's downstreams: where a circuit breaker sits, one per arrow.
CALLS = {
    "gateway": ("catalog", "orders"),
    "orders": ("inventory", "payments"),
    "notifications": ("orders",),
}
