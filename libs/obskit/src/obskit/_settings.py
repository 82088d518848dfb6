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

Resilience of every call to another service (see :mod:`obskit._http`), per
downstream; ``resilience=False`` turns it all off (``make bench`` compares both):

==============================  =======  ==========================================
setting                         default  why
==============================  =======  ==========================================
``request_budget_s``            10.0     a request's whole budget, unless its caller
                                         sent a smaller one in ``Request-Timeout``
``deadline_from_caller``        true     false at the public edge (the gateway): a
                                         client's tiny budgets would make our calls
                                         time out and trip the breakers for everyone
``retry_attempts``              3        tries in all, for calls safe to repeat
``retry_wait_initial_s``        0.05     full-jitter backoff starts below this …
``retry_wait_max_s``            1.0      … and doubles up to this
``retry_budget_tokens``         10       retries stop after ~5 failures in a row …
``retry_budget_ratio``          0.1      … and resume as successes earn tokens back
``breaker_window_type``         count    ``count``: the last N calls; ``time``: N s
``breaker_window_size``         20       small, so a lab sees the breaker move
``breaker_minimum_calls``       10       fewer calls than this never open it
``breaker_failure_rate``        0.5      open when half the calls fail …
``breaker_slow_call_rate``      0.5      … or half of them are slow,
``breaker_slow_call_s``         1.0      that is slower than this
``breaker_wait_open_s``         5.0      then refuse calls for this long,
``breaker_half_open_calls``     3        then let this many trial calls through
``bulkhead_max_calls``          50       = ``http_max_connections``: a call gets a
                                         connection at once, or is refused at once
==============================  =======  ==========================================
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Literal, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The service-token key of dev and test setups: public, so refused in production.
DEV_SERVICE_TOKEN_KEY = "obslab-dev-service-token-key-change-me-0123"


class ServiceSettings(BaseSettings):
    """What every obslab service can be told: where to listen, how to log, HTTP limits."""

    model_config = SettingsConfigDict(env_prefix="OBSLAB_", extra="ignore")

    service_name: str = "obslab"
    #: ``production`` unless told otherwise: there a secret left at its well-known dev
    #: default is a startup error. The native lab and compose set ``dev``, tests ``test``.
    environment: Literal["dev", "test", "production"] = "production"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``auto`` is pretty on a terminal and JSON everywhere else.
    log_format: Literal["auto", "json", "console"] = "auto"
    #: Request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    #: Paths whose POST body is a form (``application/x-www-form-urlencoded``), as the
    #: OAuth2 token endpoint's must be (RFC 6749); every other body must be JSON.
    form_body_paths: tuple[str, ...] = ()
    #: Origins a browser may call the API from (CORS); none by default. JSON in the
    #: environment: ``["https://shop.example"]``. Never ``*``: the list is explicit.
    cors_allow_origins: tuple[str, ...] = ()
    #: Send ``Strict-Transport-Security``: only where TLS is terminated in front.
    hsts: bool = False
    #: Seconds uvicorn waits for in-flight requests after SIGTERM.
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    #: Off (``OBSLAB_TELEMETRY=false``), the service runs as an uninstrumented app
    #: would: no spans, HTTP metrics or request log lines. ``make bench`` compares both.
    telemetry: bool = True

    http_max_connections: int = Field(default=50, gt=0)
    http_timeout_s: float = Field(default=5.0, gt=0)
    http_pool_timeout_s: float = Field(default=1.0, gt=0)

    #: Calls between services carry a token signed with this key, shared by every
    #: service (see obskit._identity). The default is public: only for dev and test.
    service_token_key: SecretStr = Field(default=SecretStr(DEV_SERVICE_TOKEN_KEY), min_length=32)
    #: How long a service token is good for: one call, plus clock differences.
    service_token_ttl_s: int = Field(default=60, ge=5, le=3600)
    #: Refuse requests without a valid service token. Each internal service turns it
    #: on in its settings; the public gateway checks users' OAuth2 tokens instead.
    require_service_token: bool = False

    #: The credential of the admin API (``/admin/chaos/...``), apart from any user's.
    #: Unset (the default), the admin API is off and no fault is ever injected.
    admin_token: SecretStr | None = None
    #: Where the admin API may be called from: loopback and the private ranges (a
    #: laptop, a compose network). JSON in the environment: ``["10.0.0.0/8"]``.
    admin_networks: tuple[IPvAnyNetwork, ...] = (
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
        IPv4Network("10.0.0.0/8"),
        IPv4Network("172.16.0.0/12"),
        IPv4Network("192.168.0.0/16"),
        IPv6Network("fc00::/7"),
    )
    #: The Redis that holds the injected faults, shared by every replica: the same
    #: ``OBSLAB_REDIS_URL`` as a service's own cache, where it has one.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: How often a process reads its faults: how soon a fault reaches every replica.
    chaos_refresh_s: float = Field(default=1.0, gt=0, le=60)

    def public_dev_secrets(self) -> list[str]:
        """The settings still at their public dev default (a subclass adds its own)."""
        key = self.service_token_key.get_secret_value()
        return ["OBSLAB_SERVICE_TOKEN_KEY"] if key == DEV_SERVICE_TOKEN_KEY else []

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Self:
        if self.environment == "production" and (names := self.public_dev_secrets()):
            raise ValueError(
                f"{', '.join(names)}: still the public dev default. Set secrets of your own "
                "(the service token key: 32+ random bytes, the same in every service), or "
                "OBSLAB_ENVIRONMENT=dev for a lab on your machine"
            )
        return self

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in origins:
            raise ValueError("list the origins allowed to call the API; '*' is not a list")
        return origins

    @field_validator("admin_token")
    @classmethod
    def _check_admin_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is None or not token.get_secret_value():
            return None  # OBSLAB_ADMIN_TOKEN= (empty) leaves the admin API off
        if len(token.get_secret_value()) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        return token

    resilience: bool = True
    request_budget_s: float = Field(default=10.0, gt=0)
    deadline_from_caller: bool = True
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_wait_initial_s: float = Field(default=0.05, ge=0)
    retry_wait_max_s: float = Field(default=1.0, ge=0)
    retry_budget_tokens: int = Field(default=10, ge=1, le=1000)
    retry_budget_ratio: float = Field(default=0.1, gt=0, le=1)
    breaker_window_type: Literal["count", "time"] = "count"
    breaker_window_size: int = Field(default=20, ge=1, le=10_000)
    breaker_minimum_calls: int = Field(default=10, ge=1)
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_slow_call_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_slow_call_s: float = Field(default=1.0, gt=0)
    breaker_wait_open_s: float = Field(default=5.0, ge=0)
    breaker_half_open_calls: int = Field(default=3, ge=1)
    bulkhead_max_calls: int = Field(default=50, ge=1)


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
