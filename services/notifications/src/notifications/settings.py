"""Settings of the notifications worker (``OBSLAB_*`` environment variables)."""

from typing import Self

from pydantic import Field, model_validator

from obskit import BrokerSettings, DatabaseSettings, ServiceSettings


class Settings(ServiceSettings, DatabaseSettings, BrokerSettings):
    service_name: str = "notifications"
    #: Internal: only other services call it, each with a service token (obskit._identity).
    require_service_token: bool = True
    port: int = 8105
    orders_url: str = "http://127.0.0.1:8102"
    #: The queue of order events this worker consumes; its dead letters go to ``<queue>.dlq``.
    queue: str = Field(default="notifications.order-events", min_length=1, max_length=200)
    #: Messages the broker hands over before any is acknowledged: the worker's concurrency.
    prefetch: int = Field(default=10, ge=1, le=1000)
    #: Tries per message (the first one included) before it is dead-lettered.
    max_attempts: int = Field(default=4, ge=1, le=20)
    #: Exponential backoff between tries, with jitter, from this delay…
    retry_initial_delay_s: float = Field(default=0.2, gt=0)
    #: …up to this one.
    retry_max_delay_s: float = Field(default=5.0, gt=0)
    #: How long the simulated email provider takes to accept an email.
    send_latency_ms: int = Field(default=5, ge=0, le=60_000)

    @model_validator(mode="after")
    def _check_backoff(self) -> Self:
        if self.retry_max_delay_s < self.retry_initial_delay_s:
            raise ValueError("retry_max_delay_s must be at least retry_initial_delay_s")
        return self
