"""obskit: the shared kit every obslab service is built on.

Telemetry (structlog, OpenTelemetry, Prometheus), JSON errors, health checks, and
the long-lived clients a lifespan owns (HTTP, database, Redis, RabbitMQ). What the
shop's services agree on (the payment card, the order events) is the shop's, in
:mod:`contracts`.
"""

import importlib
from typing import TYPE_CHECKING, Any

from obskit._app import fastapi_telemetry, instrument_service, run, serve
from obskit._breaker import BreakerConfig, CircuitBreaker
from obskit._bulkhead import Bulkhead
from obskit._chaos import Fault, FaultCreate, worker_faults
from obskit._deadline import DEADLINE_HEADER, without_deadline
from obskit._errors import (
    BadRequest,
    BulkheadFull,
    CircuitOpen,
    Conflict,
    DeadlineExceeded,
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    ErrorBody,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    error_response,
)
from obskit._fallback import DEGRADED_HEADER, FALLBACKS, fallback_served
from obskit._health import Readiness
from obskit._identity import service_token
from obskit._logging import configure_logging
from obskit._metrics import (
    HTTP_BUCKETS,
    HTTP_CLIENT_DURATION,
    HTTP_SERVER_ACTIVE,
    HTTP_SERVER_DURATION,
    POOLS,
    observe_with_exemplar,
)
from obskit._redact import REDACTED, luhn_valid, redact, redact_text
from obskit._settings import BrokerSettings, DatabaseSettings, RedisSettings, ServiceSettings
from obskit._telemetry import current_trace_id, flush_telemetry, setup_tracing

# The database, Redis and broker pieces pull in SQLAlchemy, asyncpg, redis and
# aio-pika: about 30 MiB and a third of a second that the gateway, which uses none of
# them, would pay at every start. They are imported on first use (PEP 562):
# ``from obskit import open_database`` is what loads SQLAlchemy.
_LAZY = {
    **dict.fromkeys(
        ("DEAD_LETTER_EXCHANGE", "EXCHANGE", "connect_broker", "declare_exchanges"),
        "obskit._broker",
    ),
    **dict.fromkeys(
        (
            "DatabaseContext",
            "create_engine",
            "create_tables",
            "database_url",
            "dispose_engine",
            "ensure_database",
            "open_database",
            "ping_database",
            "sessionmaker",
        ),
        "obskit._db",
    ),
    "close_redis": "obskit._redis",
    "create_redis": "obskit._redis",
    # The client side (httpx and its instrumentation, stamina): only a service that
    # calls others needs it, and a function's cold start is shorter without it.
    **dict.fromkeys(("ServiceClient", "ServiceTokenAuth"), "obskit._http"),
    **dict.fromkeys(("RetryBudget", "RetryPolicy", "set_retry_testing"), "obskit._retry"),
    # Mangum and the function's telemetry: only a service run as a Lambda function.
    "LambdaFunction": "obskit._function",
    "LocalContext": "obskit._function",
}

if TYPE_CHECKING:  # what mypy and editors see: the same names, imported eagerly
    from obskit._broker import (
        DEAD_LETTER_EXCHANGE,
        EXCHANGE,
        connect_broker,
        declare_exchanges,
    )
    from obskit._db import (
        DatabaseContext,
        create_engine,
        create_tables,
        database_url,
        dispose_engine,
        ensure_database,
        open_database,
        ping_database,
        sessionmaker,
    )
    from obskit._function import LambdaFunction, LocalContext
    from obskit._http import ServiceClient, ServiceTokenAuth
    from obskit._redis import close_redis, create_redis
    from obskit._retry import RetryBudget, RetryPolicy, set_retry_testing


def __getattr__(name: str) -> Any:
    """Import a lazily exported name on first use, then keep it as a plain attribute."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'obskit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEADLINE_HEADER",
    "DEAD_LETTER_EXCHANGE",
    "DEGRADED_HEADER",
    "EXCHANGE",
    "FALLBACKS",
    "HTTP_BUCKETS",
    "HTTP_CLIENT_DURATION",
    "HTTP_SERVER_ACTIVE",
    "HTTP_SERVER_DURATION",
    "POOLS",
    "REDACTED",
    "BadRequest",
    "BreakerConfig",
    "BrokerSettings",
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitOpen",
    "Conflict",
    "DatabaseContext",
    "DatabaseSettings",
    "DeadlineExceeded",
    "DownstreamError",
    "DownstreamTimeout",
    "DownstreamUnavailable",
    "ErrorBody",
    "Fault",
    "FaultCreate",
    "LambdaFunction",
    "LocalContext",
    "NotFound",
    "PayloadTooLarge",
    "Readiness",
    "RedisSettings",
    "RetryBudget",
    "RetryPolicy",
    "ServiceClient",
    "ServiceError",
    "ServiceSettings",
    "ServiceTokenAuth",
    "UnsupportedMediaType",
    "close_redis",
    "configure_logging",
    "connect_broker",
    "create_engine",
    "create_redis",
    "create_tables",
    "current_trace_id",
    "database_url",
    "declare_exchanges",
    "dispose_engine",
    "ensure_database",
    "error_response",
    "fallback_served",
    "fastapi_telemetry",
    "flush_telemetry",
    "instrument_service",
    "luhn_valid",
    "observe_with_exemplar",
    "open_database",
    "ping_database",
    "redact",
    "redact_text",
    "run",
    "serve",
    "service_token",
    "sessionmaker",
    "set_retry_testing",
    "setup_tracing",
    "without_deadline",
    "worker_faults",
]
