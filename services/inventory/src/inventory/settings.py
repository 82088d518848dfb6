"""Settings of the inventory service (``OBSLAB_*`` environment variables)."""

from pydantic import Field

from obskit import DatabaseSettings, ServiceSettings


class Settings(ServiceSettings, DatabaseSettings):
    service_name: str = "inventory"
    #: Internal: only other services call it, each with a service token (obskit._identity).
    require_service_token: bool = True
    port: int = 8103
    #: Units of each demo product (ids 1..12) put in an empty stock table on startup.
    seed_stock: int = Field(default=1000, ge=0, le=1_000_000_000)
