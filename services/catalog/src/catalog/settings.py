"""Settings of the catalog service (``OBSLAB_*`` environment variables)."""

from pydantic import Field

from obskit import DatabaseSettings, RedisSettings, ServiceSettings


class Settings(ServiceSettings, DatabaseSettings, RedisSettings):
    service_name: str = "catalog"
    #: Internal: only other services call it, each with a service token (obskit._identity).
    require_service_token: bool = True
    port: int = 8101
    #: How long a product stays in Redis; a change invalidates it sooner.
    cache_ttl_s: int = Field(default=60, gt=0)
    #: Fill an empty catalog with the demo products on startup.
    seed_demo_data: bool = True
