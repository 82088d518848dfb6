"""Settings of the payments service (``OBSLAB_*`` environment variables)."""

from pydantic import Field

from obskit import DatabaseSettings, ServiceSettings


class Settings(ServiceSettings, DatabaseSettings):
    service_name: str = "payments"
    #: Internal: only other services call it, each with a service token (obskit._identity).
    require_service_token: bool = True
    port: int = 8104
    #: The simulated bank's median answer time; a lab raises it to make payments slow.
    bank_latency_ms: float = Field(default=40.0, ge=0, le=60_000)
    #: Spread of that latency (sigma of a log-normal): 0.5 puts p99 near 3.2x the median.
    bank_latency_jitter: float = Field(default=0.5, ge=0, le=2)
    #: The longest payments waits for the bank: a slower answer counts as none (503
    #: bank_unavailable, nothing charged). It bounds how long a charge that started can
    #: still take, which orders' recovery waits out (its recovery_settle_s is longer).
    bank_timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: Share of bank calls that fail (answer 503 bank_unavailable); a lab raises it.
    bank_failure_rate: float = Field(default=0.0, ge=0, le=1)
    #: Seed of the bank's randomness, to make a run's latencies and failures repeatable.
    random_seed: int | None = None
