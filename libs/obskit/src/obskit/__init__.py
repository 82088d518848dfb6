"""obskit: the shared kit every obslab service is built on.

Telemetry (structlog, OpenTelemetry, Prometheus), JSON errors, health checks, and
the long-lived clients a lifespan owns (HTTP, database, Redis, RabbitMQ).
"""

from obskit._app import instrument_service, run, serve
from obskit._broker import connect_broker, declare_exchanges
from obskit._cards import CardBrand, PaymentCard, card_brand
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
from obskit._errors import (
    BadRequest,
    Conflict,
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
from obskit._events import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    AnyOrderEvent,
    OrderEvent,
    OrderFailed,
    OrderPlaced,
)
from obskit._health import Readiness
from obskit._http import ServiceClient
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
from obskit._redis import close_redis, create_redis
from obskit._settings import BrokerSettings, DatabaseSettings, RedisSettings, ServiceSettings
from obskit._telemetry import current_trace_id, flush_telemetry, setup_tracing

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "EXCHANGE",
    "HTTP_BUCKETS",
    "HTTP_CLIENT_DURATION",
    "HTTP_SERVER_ACTIVE",
    "HTTP_SERVER_DURATION",
    "POOLS",
    "REDACTED",
    "AnyOrderEvent",
    "BadRequest",
    "BrokerSettings",
    "CardBrand",
    "Conflict",
    "DatabaseContext",
    "DatabaseSettings",
    "DownstreamError",
    "DownstreamTimeout",
    "DownstreamUnavailable",
    "ErrorBody",
    "NotFound",
    "OrderEvent",
    "OrderFailed",
    "OrderPlaced",
    "PayloadTooLarge",
    "PaymentCard",
    "Readiness",
    "RedisSettings",
    "ServiceClient",
    "ServiceError",
    "ServiceSettings",
    "UnsupportedMediaType",
    "card_brand",
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
    "sessionmaker",
    "setup_tracing",
]
