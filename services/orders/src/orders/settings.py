"""Settings of the orders service (``OBSLAB_*`` environment variables)."""

from pydantic import Field

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
