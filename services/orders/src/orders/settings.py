"""Settings of the orders service (``OBSLAB_*`` environment variables)."""

from typing import Self

from pydantic import Field, model_validator

from obskit import BrokerSettings, DatabaseSettings, ServiceSettings


class Settings(ServiceSettings, DatabaseSettings, BrokerSettings):
    service_name: str = "orders"
    #: Internal: only other services call it, each with a service token (obskit._identity).
    require_service_token: bool = True
    port: int = 8102
    inventory_url: str = "http://127.0.0.1:8103"
    payments_url: str = "http://127.0.0.1:8104"
    #: How often the outbox relay looks for events to publish; the lag of an event.
    outbox_poll_interval_s: float = Field(default=0.2, gt=0, le=60)
    #: The most events one relay pass publishes (and locks) at a time.
    outbox_batch_size: int = Field(default=100, gt=0, le=10_000)
    #: How long after its creation a checkout's outcome is final: no request of it can
    #: still be under way (orders.recovery). Longer than the request budget (10 s) plus
    #: the longest a charge that started may take (payments' bank_timeout_s, 5 s), with
    #: room for a commit under way.
    recovery_settle_s: float = Field(default=20.0, gt=0, le=3600)
    #: How often the recovery looks for jobs that are due.
    recovery_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: The longest wait between two tries of a job whose peer is down.
    recovery_backoff_max_s: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _settles_after_the_budget(self) -> Self:
        if self.recovery_settle_s <= self.request_budget_s:
            raise ValueError(
                "recovery_settle_s must exceed request_budget_s: a checkout may still be"
                " running until its budget is spent"
            )
        return self
