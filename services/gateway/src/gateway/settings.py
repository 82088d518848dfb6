"""Settings of the gateway (``OBSLAB_*`` environment variables)."""

from obskit import ServiceSettings


class Settings(ServiceSettings):
    """The gateway keeps no state of its own, only where the services it calls live."""

    service_name: str = "gateway"
    port: int = 8100
    catalog_url: str = "http://127.0.0.1:8101"
    orders_url: str = "http://127.0.0.1:8102"
