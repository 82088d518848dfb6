"""Settings every service shares, read from ``OBSLAB_*`` environment variables.

Each service subclasses :class:`ServiceSettings` (adding :class:`DatabaseSettings`,
:class:`RedisSettings` or :class:`BrokerSettings` where it uses them), so that one
variable means the same thing in every service. OpenTelemetry is *not* configured
here: it reads the standard ``OTEL_*`` variables itself.

Pool sizes and timeouts, with the defaults and why:

==========================  =======  ==============================================
setting                     default  why
==========================  =======  ==============================================
``http_max_connections``    50       one process rarely has more calls in flight
``http_timeout_s``          5.0      a call slower than this is a failure, not a wait
``http_pool_timeout_s``     1.0      waiting longer for a free connection hides overload
``db_pool_size``            5        + ``db_max_overflow`` (5) = 10 per process
``db_pool_timeout_s``       2.0      acquire timeout: a saturated pool fails fast
``redis_max_connections``   20       Redis answers in microseconds; few are needed
``redis_timeout_s``         0.5      socket and acquire timeout for a cache call
==========================  =======  ==============================================
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every obslab service can be told: where to listen, how to log, HTTP limits."""

    model_config = SettingsConfigDict(env_prefix="OBSLAB_", extra="ignore")

    service_name: str = "obslab"
    environment: Literal["dev", "test", "production"] = "dev"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``auto`` is pretty on a terminal and JSON everywhere else.
    log_format: Literal["auto", "json", "console"] = "auto"
    #: Request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    #: Seconds uvicorn waits for in-flight requests after SIGTERM.
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    #: Off (``OBSLAB_TELEMETRY=false``), the service runs as an uninstrumented app
    #: would: no spans, HTTP metrics or request log lines. ``make bench`` compares both.
    telemetry: bool = True

    http_max_connections: int = Field(default=50, gt=0)
    http_timeout_s: float = Field(default=5.0, gt=0)
    http_pool_timeout_s: float = Field(default=1.0, gt=0)


class DatabaseSettings(BaseSettings):
    """A database of the service's own: PostgreSQL when a URL is given, SQLite otherwise."""

    model_config = SettingsConfigDict(env_prefix="OBSLAB_", extra="ignore")

    #: ``postgresql://…`` or ``sqlite:///path``; empty means SQLite under ``data_dir``.
    database_url: str = ""
    data_dir: str = ".obslab/data"
    db_pool_size: int = Field(default=5, gt=0)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout_s: float = Field(default=2.0, gt=0)


class RedisSettings(BaseSettings):
    """The shared Redis: cache for catalog, idempotency and limits elsewhere."""

    model_config = SettingsConfigDict(env_prefix="OBSLAB_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_max_connections: int = Field(default=20, gt=0)
    redis_timeout_s: float = Field(default=0.5, gt=0)


class BrokerSettings(BaseSettings):
    """The RabbitMQ broker that carries order events."""

    model_config = SettingsConfigDict(env_prefix="OBSLAB_", extra="ignore")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
